"""An undecorated run(raw_data): sees the body text, whatever it is."""


def init():
    pass


def run(raw_data):
    if raw_data == "none":
        return None
    return {"raw": raw_data}
