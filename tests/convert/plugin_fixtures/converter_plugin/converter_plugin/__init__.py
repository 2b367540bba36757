"""A test converter plugin (the guide's layout): the functions live in converter_plugin.__main__."""
