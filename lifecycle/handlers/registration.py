"""A person's decision on a challenger the registration gate held (`mlops approve` / `reject`)."""
from __future__ import annotations

from lifecycle.core.state_records import Decision
from lifecycle.steps import model_registration
from lifecycle.steps.model_registration import RegistrationPorts


def review(p: RegistrationPorts, job_name: str, approve: bool, by: str) -> Decision:
    """Register the held challenger after all, or reject it."""
    return model_registration.review(p, job_name, approve, by)
