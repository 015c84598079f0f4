"""URLs of the bounces app: each feature keeps its own module."""

from . import urls_detail, urls_pipeline
from .rules import urls as urls_rules

app_name = "bounces"
urlpatterns = [*urls_rules.urlpatterns, *urls_pipeline.urlpatterns, *urls_detail.urlpatterns]
