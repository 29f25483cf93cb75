"""Stand-in for deployment/score.py: azure-ai-ml checks the scoring script before deploying."""


def init():
    pass


def run(raw_data):
    return []
