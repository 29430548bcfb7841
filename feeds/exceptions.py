class FeedError(Exception):
    """A feed could not be read or turned into an issue; the message says why, for the editor."""
