"""nginx's connection and request limits: sized for the VM, short for slow clients.

The attack this answers: ~2,000 connections dripping one body byte every 20 s exhausted
2 x 1,024 worker connections while keyed clients got nothing. Now a slow client is cut after
``CLIENT_TIMEOUT_S`` per read, anonymous requests are limited per address (keyed ones are
limited per key, by the keys include), and there are enough connections and descriptors for a
few thousand idle sockets on top of real traffic.
"""

from __future__ import annotations

CLIENT_TIMEOUT_S = 10
BODY_LIMIT_MB = 16  # client_max_body_size; LocalAI's upload limit is set to match
ANON_CONNECTIONS = 64
"""Requests in progress per address without a valid key (keyed ones are not counted)."""
SERVER_LIMITS = f"limit_conn slm_addr {ANON_CONNECTIONS};"


def connection_budget(mem_total: int, nofile_hard: int | None = None) -> tuple[int, int]:
    """(worker_connections, worker_rlimit_nofile) for a VM with ``mem_total`` bytes of RAM.

    One connection per MiB of RAM per worker, between 4096 and 16384: an idle TLS connection
    costs nginx a few KB (OpenSSL buffers are released while idle), so even 16384 stay well
    under the memory the model leaves free. ``nofile_hard`` caps it where nginx cannot raise its
    own limit (an unprivileged sandbox); as root on the appliance it can.
    """
    wc = max(4096, min(16384, mem_total >> 20))
    nofile = 2 * wc + 64
    if nofile_hard is not None and nofile > nofile_hard:
        nofile = nofile_hard
        wc = max(1024, (nofile - 64) // 2)
    return wc, nofile


def render_http_limits() -> str:
    return f"""# Slow clients cannot hold connections: headers and each body read within
    # {CLIENT_TIMEOUT_S} s, a refused body is drained for at most {CLIENT_TIMEOUT_S} s.
    client_header_timeout {CLIENT_TIMEOUT_S}s;
    client_body_timeout {CLIENT_TIMEOUT_S}s;
    lingering_time {CLIENT_TIMEOUT_S}s;
    lingering_timeout 2s;
    reset_timedout_connection on;
    keepalive_timeout 30s;
    send_timeout 60s;
    client_max_body_size {BODY_LIMIT_MB}m;
    client_body_buffer_size 1m;
    large_client_header_buffers 4 16k;

    # Clients without a valid key: connections and probe rate per address.
    map $slm_key_ok $slm_anon_addr {{
        1 "";
        default $binary_remote_addr;
    }}
    limit_conn_zone $slm_anon_addr zone=slm_addr:10m;
    limit_req_zone $slm_anon_addr zone=slm_probe:10m rate=50r/s;
    limit_conn_status 429;
    limit_req_status 429;
    limit_conn_log_level info;
    limit_req_log_level info;"""
