"""Server transactions: retransmissions answered from the cache, ACKs absorbed, Timer G
retransmitting a final response over UDP until the ACK, and every transaction forgotten in
time (time is an argument)."""

from __future__ import annotations

from sip.message import Request
from sip.parser import parse_message
from sip.transactions import T1_S, T2_S, T4_S, Transactions, transaction_key

PEER = ("192.0.2.1", 5060)


def _request(method: str, branch: str = "z9hG4bK1", cseq_method: str | None = None) -> Request:
    message = parse_message(
        f"{method} sip:+12125550187@demo.sip.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n"
        "From: <sip:ana@demo.sip.example>;tag=f\r\nTo: <sip:+12125550187@demo.sip.example>\r\n"
        f"Call-ID: c1\r\nCSeq: 1 {cseq_method or method}\r\n\r\n".encode())
    assert isinstance(message, Request) and message.defect is None
    return message


def test_ack_and_cancel_find_the_invite_they_belong_to() -> None:
    invite = transaction_key(_request("INVITE"))
    assert transaction_key(_request("ACK")) == invite
    assert transaction_key(_request("CANCEL"), "INVITE") == invite
    assert transaction_key(_request("CANCEL")) != invite
    assert transaction_key(_request("INVITE", branch="z9hG4bK2")) != invite


def test_an_rfc_2543_request_is_keyed_by_its_dialog_and_cseq() -> None:
    old = transaction_key(_request("INVITE", branch="1"))
    assert old[0] == "2543" and transaction_key(_request("ACK", branch="1")) == old


def test_a_udp_invite_final_response_is_retransmitted_until_the_ack() -> None:
    transactions = Transactions()
    t = transactions.start(("k",), "INVITE", PEER, False, 0.0)
    transactions.complete(t, b"486", 0.0)
    sent_at = []
    now = 0.0
    while now < 10.0:
        now = round(now + 0.05, 2)
        if transactions.due(now):
            sent_at.append(now)
    # T1, then doubling up to T2: 0.5, 1.5, 3.5, 7.5
    assert sent_at == [T1_S, T1_S * 3, T1_S * 7, T1_S * 7 + T2_S]
    transactions.acknowledge(t, now)
    assert transactions.due(now + 30) == []
    assert transactions.find(("k",)) is None  # forgotten T4 after the ACK


def test_retransmission_stops_at_timer_h() -> None:
    transactions = Transactions()
    t = transactions.start(("k",), "INVITE", PEER, False, 0.0)
    transactions.complete(t, b"486", 0.0)
    count = sum(len(transactions.due(i / 10)) for i in range(1, 400))
    assert count == 10  # 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5
    assert transactions.find(("k",)) is None


def test_nothing_is_retransmitted_over_tcp_and_the_ack_ends_it() -> None:
    transactions = Transactions()
    t = transactions.start(("k",), "INVITE", PEER, True, 0.0)
    transactions.complete(t, b"302", 0.0)
    assert transactions.due(5.0) == []
    transactions.acknowledge(t, 5.0)
    transactions.due(5.0)
    assert transactions.find(("k",)) is None


def test_a_non_invite_answer_is_kept_for_retransmissions_then_forgotten() -> None:
    transactions = Transactions()
    t = transactions.start(("k",), "OPTIONS", PEER, False, 0.0)
    transactions.complete(t, b"200", 0.0)
    assert transactions.due(31.0) == [] and transactions.find(("k",)) is t
    transactions.due(64 * T1_S)
    assert transactions.find(("k",)) is None
    reliable = transactions.start(("r",), "OPTIONS", PEER, True, 0.0)
    transactions.complete(reliable, b"200", 0.0)
    transactions.due(T4_S)
    assert transactions.find(("r",)) is None


def test_memory_is_bounded() -> None:
    transactions = Transactions(max_transactions=50)
    for i in range(500):
        transactions.start((str(i),), "INVITE", PEER, False, float(i))
    assert len(transactions) == 50
    assert transactions.find(("499",)) is not None
