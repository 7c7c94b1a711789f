"""Default US telemarketing calling-hours table (federal rule plus narrower state rules).

This module is pure data. ``FEDERAL`` is the nationwide window under the TCPA
rules. ``STATES`` maps an ISO 3166-2 subdivision code to the window a state
allows when its own law is narrower than the federal one. Times are local
time where the called party is. An account can override any entry, add
entries, or list its own holiday dates.

Window syntax: comma-separated groups "<days> HH:MM-HH:MM", where <days> is
one day or a range of mon,tue,wed,thu,fri,sat,sun. A day that no group covers
has no calling at all (a state that bans Sunday calls simply leaves out sun).
The second field is "holidays" when the state also bans calls on legal
holidays. The table cannot list each state's holidays, so the account lists
those dates. The third field is the citation.

Every entry was checked against the source listed in the research notes for
that state. Where sources disagreed, the statute or regulation text won. Most
of these rules apply only to unsolicited sales calls, and many have exceptions
(for example prior express consent, an established business relationship, or
automated calls only), which this table does not model.

NOT LEGAL ADVICE. This is an engineering default and may be incomplete or out
of date. Check current law with counsel before relying on it.

Compiled 2026-12-04.
"""

from __future__ import annotations

FEDERAL = "mon-sun 08:00-21:00"
"""47 CFR 64.1200(c)(1) (TCPA): no telephone solicitation before 8 a.m. or after
9 p.m. local time at the called party's location (also 16 CFR 310.4(c), TSR)."""

STATES: dict[str, tuple[str, str, str]] = {
    # subdivision: (windows, no-call days, source)
    "US-AL": ("mon-sat 08:00-20:00", "holidays",
              "Ala. Admin. Code r. 770-X-5-.17(1)(b) (Alabama PSC telephone rules; automated "
              "solicitation calls)"),
    "US-CT": ("mon-sun 09:00-20:00", "",
              "Conn. Gen. Stat. 42-288a, as amended by P.A. 23-98 (eff. 2023-10-01)"),
    "US-FL": ("mon-sun 08:00-20:00", "",
              "Fla. Stat. 501.616(6)(a) (Florida Telemarketing Act, as amended by SB 1120, 2021)"),
    "US-KY": ("mon-sun 10:00-21:00", "",
              "KRS 367.46955 (Kentucky telephone solicitation prohibited practices)"),
    "US-LA": ("mon-sat 08:00-20:00", "holidays",
              "La. R.S. 45:811(2)-(3) (ADAD equipment or live-operator sales calls)"),
    "US-MA": ("mon-sun 08:00-20:00", "",
              "201 CMR 12.02(2) (under M.G.L. c. 159C, Massachusetts Do Not Call law)"),
    "US-MD": ("mon-sun 08:00-20:00", "",
              "Md. Code, Com. Law 14-4501 et seq. (Stop the Spam Calls Act of 2023, eff. "
              "2024-01-01)"),
    "US-MS": ("mon-sat 08:00-20:00", "",
              "Miss. Code Ann. 77-3-723(1) (Mississippi Telephone Solicitation Act; statute "
              "says Central Standard Time)"),
    "US-OK": ("mon-sun 08:00-20:00", "",
              "Okla. Stat. tit. 15, 775C.4 (Telephone Solicitation Act of 2022, HB 3168)"),
    "US-PA": ("mon-sun 08:00-21:00", "holidays",
              "73 P.S. 2245(a)(10) (Telemarketer Registration Act, as amended by Act 73 of 2019)"),
    "US-RI": ("mon-fri 09:00-18:00, sat 10:00-17:00", "holidays",
              "R.I. Gen. Laws 5-61-3.6 and 5-61-2 'hours of operation' (Telephone Sales "
              "Solicitation Act)"),
    "US-TX": ("mon-sat 09:00-21:00, sun 12:00-21:00", "",
              "Tex. Bus. & Com. Code 301.051 (Telephone Solicitation Practices)"),
    "US-UT": ("mon-sat 08:00-21:00", "holidays",
              "Utah Code 13-25a-103(3) (Telephone and Facsimile Solicitation Act; absent prior "
              "express consent)"),
    "US-WA": ("mon-sun 08:00-20:00", "",
              "RCW 19.158.040(2) and RCW 80.36.390, as amended by ESHB 1497 (2022)"),
}
