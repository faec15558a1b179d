"""mkdocs hook: the docstrings' Sphinx roles (:class:`X`, :func:`f`, ...) as code, linked where the name is known.

The docstrings are Google style with reST inline roles, which mkdocstrings renders literally as
``:class:<code>X</code>``. This drops the role and, for a fully qualified ``synjax.`` name, wraps the code in an
optional autorefs cross-reference: a link where the API reference documents the object, plain code (no warning)
where it does not. Excluded from the site by ``exclude_docs`` in mkdocs.yml.
"""

import re

_ROLE = re.compile(r":(?:py:)?(?:class|mod|func|meth|attr|data|obj|exc|const|type):<code>~?([^<]*)</code>")


def _replace(match: re.Match) -> str:
    name = match[1]
    if name.startswith("synjax.") and re.fullmatch(r"[\w.]+", name):
        return f'<autoref identifier="{name}" optional><code>{name}</code></autoref>'
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_replace, html)
