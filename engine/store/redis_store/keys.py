"""Every Redis key callgate uses, each built by one function.

An account's keys start with ``cg:{<account id>}:``: the braces are Redis Cluster's hash tag,
so all of them live in one slot and every script over them runs unchanged on a cluster (and
through a proxy that routes by the first key). The few keys outside any account each live
in a slot of their own and are only ever used by themselves.

=========================  =========  ===============================================
key                        type       what
=========================  =========  ===============================================
``cg:accounts``            set        every account id (for a full version check)
``cg:token:<hash>``        string     the account a token hash belongs to
``cg:{changes}:version``   string     counts every change announced (config, tokens)
``cg:{changes}:feed``      stream     the latest changes: ``n``, then ``a`` + ``v``
                                      (an account's new version) or ``t`` (a token
                                      hash revoked)
``cg:{numbers}:owners``    hash       phone number, or ``sip:<domain>`` (a SIP
                                      domain, lower case) -> its account
``cg:{numbers}:of:<id>``   set        the names an account claimed (for letting go)
``…:config``               hash       ``v`` version, ``c`` the configuration (JSON)
``…:audit``                stream     the audit log, ``e`` each entry (JSON)
``…:tokens``               hash       token hash -> its record (msgpack)
``…:token-use``            hash       token hash -> about when it was last used (ms)
``…:channels``             zset       ``<user>|<call id>`` -> lease expiry (ms): calls
                                      holding a channel (the leases)
``…:held``                 hash       user id -> channels the user holds
``…:sticky``               hash       contact -> ``<caller ID> <expiry ms>``
``…:sticky-expiry``        zset       contact -> its sticky entry's expiry (for pruning)
``…:call:<call id>``       string     a call that was allowed (see ``lua/record.lua``)
``…:denied:<call id>``     string     a remembered denial (see ``lua/admit.lua``)
``…:usage:<day>``          hash       number -> calls it placed on the account's day
                                      (``2026-12-04``); kept ``USAGE_KEPT_DAYS``
``…:answers``              hash       number -> its last ended calls, '1' connected
                                      or '0' not, oldest first (``auto_rest``; see
                                      ``lua/end.lua``)
``…:texts:<day>``          hash       number -> texts it sent on the account's day;
                                      kept ``USAGE_KEPT_DAYS``
``…:dnc:<bucket>``         set        the do-not-call list, in 65,536 sets of integers
                                      (intsets): a number's low 16 bits name its set,
                                      the rest of it is the member (``store/dnc.py``)
``…:dnc-count``            string     how many numbers the do-not-call list holds
=========================  =========  ===============================================
"""

from __future__ import annotations

__all__ = [
    "ACCOUNTS",
    "CHANNEL",
    "FEED",
    "FEED_VERSION",
    "NUMBER_OWNERS",
    "AccountKeys",
    "numbers_of",
    "token_index",
]

ACCOUNTS = "cg:accounts"
FEED_VERSION = "cg:{changes}:version"
FEED = "cg:{changes}:feed"
CHANNEL = "callgate:config"
"""The pub/sub channel of changes: ``<account id> <version>``, or ``-token <hash>``."""


NUMBER_OWNERS = "cg:{numbers}:owners"
"""Every account's numbers and SIP domain in one slot, so one script checks and claims them
together."""


def numbers_of(account_id: str) -> str:
    return f"cg:{{numbers}}:of:{account_id}"


def token_index(token_hash: str) -> str:
    return f"cg:token:{token_hash}"


class AccountKeys:
    """The keys of one account."""

    __slots__ = (
        "answers",
        "audit",
        "config",
        "counts",
        "dnc_count",
        "leases",
        "prefix",
        "sticky",
        "sticky_expiry",
        "token_use",
        "tokens",
    )

    def __init__(self, account_id: str) -> None:
        self.prefix = prefix = f"cg:{{{account_id}}}:"
        self.config = prefix + "config"
        self.audit = prefix + "audit"
        self.tokens = prefix + "tokens"
        self.token_use = prefix + "token-use"
        self.leases = prefix + "channels"
        self.counts = prefix + "held"
        self.sticky = prefix + "sticky"
        self.sticky_expiry = prefix + "sticky-expiry"
        self.answers = prefix + "answers"
        self.dnc_count = prefix + "dnc-count"

    def call(self, call_id: str) -> str:
        return self.prefix + "call:" + call_id

    def denied(self, call_id: str) -> str:
        return self.prefix + "denied:" + call_id

    def usage(self, day: str) -> str:
        return self.prefix + "usage:" + day

    def texts(self, day: str) -> str:
        return self.prefix + "texts:" + day

    def dnc(self, bucket: int) -> str:
        return f"{self.prefix}dnc:{bucket}"
