"""run() raises with a secret in the message: the client must not see it."""


def init():
    pass


def run(raw_data):
    raise ValueError("secret-detail-42 from run()")
