"""Sphinx extension: Binder and Thebe launch buttons only once the repository's address is set.

The one setting is ``repository.url`` in ``_config.yml`` (Jupyter Book passes it on as the theme option
``repository_url``). While it is empty or still the placeholder ``https://github.com/OWNER/REPOSITORY``,
the buttons would open a Binder for a repository that does not exist, so this extension removes the
launch buttons, Thebe's included (the page shows none) and says so in the build log; with a real address it
leaves ``launch_buttons`` of ``_config.yml`` as they are.
"""

from sphinx.util import logging

PLACEHOLDER = "https://github.com/OWNER/REPOSITORY"
logger = logging.getLogger(__name__)


def repository_is_set(url: str | None) -> bool:
    """Whether ``url`` names a real repository (not empty, not the placeholder).

    Parameters
    ----------
    url : str or None
        The theme option ``repository_url``.

    Returns
    -------
    bool
    """
    return bool(url) and url.rstrip("/") != PLACEHOLDER


def hide_launch_buttons_without_repository(app, config):
    """``config-inited``: drop the launch buttons and Thebe while the repository URL is a placeholder."""
    options = config.html_theme_options
    if repository_is_set(options.get("repository_url")):
        return
    options["launch_buttons"] = {}
    logger.info("launch buttons off: set repository.url in _config.yml to the repository's address "
                "to show the Binder and live-code (Thebe) buttons")


def setup(app):
    app.connect("config-inited", hide_launch_buttons_without_repository)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
