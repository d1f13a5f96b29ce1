"""Certificates:
self-signed (default), Let's Encrypt via HTTP-01 webroot, renewal policy and storage.
"""
