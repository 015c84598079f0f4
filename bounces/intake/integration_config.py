"""Configuration text the Integration page shows, ready to copy (pure).

PowerMTA writes the bounce and feedback-loop records to their own accounting file; Logstash
follows the file and posts each line as it is written (the header line first, which the
endpoint remembers), so the columns never have to be repeated in the Logstash config.
"""

from __future__ import annotations

BOUNCE_FIELDS = ("timeLogged", "orig", "rcpt", "dsnAction", "dsnStatus", "dsnDiag", "dsnMta", "bounceCat",
                 "jobId", "envId", "vmta")
FEEDBACK_FIELDS = ("timeLogged", "orig", "rcpt", "feedbackType", "format", "userAgent", "reportingMta",
                   "reportedDomain", "jobId")


def powermta_directives(*, tracking_header: str, path: str = "/var/log/pmta/bouncemgr-acct.csv") -> str:
    headers = f"header_Message-Id,header_{tracking_header}"
    return (
        f"<acct-file {path}>\n"
        "    records b, rb, f\n"
        f"    record-fields b {','.join(BOUNCE_FIELDS)},{headers}\n"
        f"    record-fields rb {','.join(BOUNCE_FIELDS)},{headers}\n"
        f"    record-fields f {','.join(FEEDBACK_FIELDS)},{headers}\n"
        "    move-interval 1h\n"
        "    max-size 100M\n"
        "    delete-after 8d\n"
        "</acct-file>\n"
    )


def logstash_pipeline(*, url: str, token: str, path: str = "/var/log/pmta/bouncemgr-acct*.csv") -> str:
    return (
        "# /etc/logstash/conf.d/bouncemgr.conf\n"
        "input {\n"
        "  file {\n"
        f'    path => "{path}"\n'
        '    start_position => "beginning"\n'
        '    sincedb_path => "/var/lib/logstash/sincedb-bouncemgr"\n'
        "  }\n"
        "}\n"
        "output {\n"
        "  http {\n"
        f'    url => "{url}"\n'
        '    http_method => "post"\n'
        '    format => "message"\n'
        '    content_type => "text/csv"\n'
        '    message => "%{message}"\n'
        f'    headers => {{ "Authorization" => "Bearer {token}" }}\n'
        "    retry_non_idempotent => true\n"
        "  }\n"
        "}\n"
    )


def vector_config(*, url: str, token: str, path: str = "/var/log/pmta/bouncemgr-acct*.csv") -> str:
    return (
        "# /etc/vector/bouncemgr.toml\n"
        "[sources.pmta_acct]\n"
        'type = "file"\n'
        f'include = ["{path}"]\n'
        'read_from = "beginning"\n\n'
        "[sinks.bouncemgr]\n"
        'type = "http"\n'
        'inputs = ["pmta_acct"]\n'
        f'uri = "{url}"\n'
        'method = "post"\n'
        'encoding.codec = "text"\n'
        'framing.method = "newline_delimited"\n'
        'request.headers.Content-Type = "text/csv"\n'
        f'request.headers.Authorization = "Bearer {token}"\n'
    )


def curl_example(*, url: str, token: str) -> str:
    return (f'curl -sS -H "Authorization: Bearer {token}" -H "Content-Type: text/csv" '
            f'--data-binary @/var/log/pmta/bouncemgr-acct.csv {url}\n')
