"""Google Drive and Docs: the collaborative doc of an incident (``docs``)."""
