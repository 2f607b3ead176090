"""hearth's own pyinfra facts: small, one question about a host each.

Use them like pyinfra's: ``host.get_fact(Container)``.
"""
