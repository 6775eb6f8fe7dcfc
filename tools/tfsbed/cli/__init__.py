"""The test bed's commands, added to ``tfsctl`` through the ``tfsctl.commands`` entry points.

One module per command group, thin over the library, like ``tfsctl.cli``; errors
are ``tfsctl.errors.ToolkitError`` so that ``tfsctl``'s ``main()`` prints them.
"""

from __future__ import annotations
