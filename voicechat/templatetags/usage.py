"""The user's own usage today against the daily budget, for their pages."""

from django import template
from django.contrib.auth.models import AbstractBaseUser

from voicechat import ledger

register = template.Library()


@register.simple_tag
def usage_today(user: AbstractBaseUser) -> ledger.BudgetToday | None:
    if not user.is_authenticated:
        return None
    return ledger.budget_today(user)
