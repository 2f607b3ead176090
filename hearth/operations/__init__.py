"""hearth's own pyinfra operations: small, idempotent, each with an example.

Use them like pyinfra's: ``from hearth.operations import files; files.validated_put(...)``.
"""
