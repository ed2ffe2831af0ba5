"""Real servers for the test suite, started on loopback by the fixtures in tests/conftest.py.

- `certs`: a private CA (trustme) and good and bad server certificates.
- `dovecot`: a private Dovecot (IMAP, POP3, LMTP) from a generated config.
- `smtp`: an aiosmtpd submission server with STARTTLS/implicit TLS and AUTH.
- `fake`: a scripted raw-protocol server for fault and attack tests.

`tests/` is put on `sys.path` by the conftest, so test modules import these as `servers.x`.
"""
