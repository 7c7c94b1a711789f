"""Text messages: which of the account's numbers an SMS goes out from.

A text follows a call's precedence (requested, sticky, geo rules, local presence, the
defaults) among the numbers that can send texts (``PhoneNumber.sms``): a user texting is
the same user with only those numbers available, so every rule passes the others over as
it passes over a number the user does not have. Texts take no channel; they count against
a number's daily cap apart from its calls. Whether texts and calls share each contact's
sticky number is the account's choice (``AccountConfig.sms_sticky_shared``).

Pure, like the rest of the package: the store picks among what these functions offer.
"""

from __future__ import annotations

import msgspec

from .snapshot import AccountSnapshot, UserView

__all__ = ["TEXT_CONTACT_PREFIX", "not_for_texts", "sticky_contact", "texting"]

TEXT_CONTACT_PREFIX = "sms:"
"""Before the contact in the store's sticky map, when texts keep their own sticky numbers
(an E.164 contact never starts so)."""


def texting(account: AccountSnapshot, user: UserView) -> UserView:
    """``user`` as a sender of texts: their available numbers that can send texts."""
    view = account.texting.get(user.id)
    if view is None:
        available = user.available & account.sms_numbers
        view = msgspec.structs.replace(user, available=available,
                                       available_sorted=tuple(sorted(available)))
        account.texting[user.id] = view
    return view


def sticky_contact(account: AccountSnapshot, contact: str) -> str:
    """Where a text's sticky number for ``contact`` is kept: the call's own entry when the
    account shares them, else one of the texts' own."""
    return contact if account.sms_sticky_shared else TEXT_CONTACT_PREFIX + contact


def not_for_texts(account: AccountSnapshot, number: str) -> str | None:
    """Why a requested sender cannot send a text, when the reason is the number itself (an
    active number of the account that cannot send texts); else None."""
    if number in account.active_numbers and number not in account.sms_numbers:
        return f"{number} cannot send text messages (it is not SMS-capable)"
    return None
