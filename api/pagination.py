"""Pagination for every list: page numbers (page_size up to 500), a cursor for bounces."""

from __future__ import annotations

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class BounceCursorPagination(pagination.CursorPagination):
    """Bounces may be millions of rows: a cursor, so no page ever counts or skips them."""

    ordering = ("-bounced_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CreatedCursorPagination(pagination.CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
