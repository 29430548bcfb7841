"""One SMTP transaction written by hand on a pooled smtplib connection: the fast path's wire.

Django's SMTP backend sends through smtplib.sendmail; these functions do the same
transaction with the same replies and exceptions, with MAIL, RCPT and DATA pipelined
(RFC 2920) and dot-stuffing done in C, and let the pool chain messages on one connection."""

import smtplib
import socket

from django.core.mail.backends.smtp import EmailBackend as SMTPBackend


def dot_stuffed(data: bytes, then: bytes = b"") -> bytes:
    """Return a message as DATA carries it: dot-stuffed (RFC 5321, 4.5.2) and terminated, then `then`.

    The same bytes as smtplib's data() writes, which stuffs with a per-line regular
    expression (a third of its time for a 35 KB digest); bytes.replace does it in C, and
    returns the message itself when no line starts with a dot. `then` (the next message's
    commands, pipelined) joins in the same single copy.
    """
    head = b"." if data.startswith(b".") else b""
    data = data.replace(b"\n.", b"\n..")
    return b"".join((head, data, b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n", then))


class FastMessage:
    """One recipient's message as the fast path sends it: envelope and final bytes.

    Called with an open pooled backend, it sends itself in one transaction (smtp_send);
    the pool may instead chain it behind the previous message on the same connection.
    """

    __slots__ = ("sender", "recipient", "data")

    def __init__(self, sender: str, recipient: str, data: bytes):
        self.sender, self.recipient, self.data = sender, recipient, data

    def __call__(self, backend) -> bool:
        # The pooled backend's own smtplib connection: its TLS, login and timeout apply.
        smtp_send(backend.connection, self.sender, self.recipient, self.data)
        return True

    def envelope(self, smtp: smtplib.SMTP) -> bytes:
        """MAIL, RCPT and DATA in one piece, for a server that offers PIPELINING."""
        mail, rcpt = envelope_commands(smtp, self.sender, self.recipient, len(self.data))
        return f"{mail}\r\n{rcpt}\r\nDATA\r\n".encode("ascii")


def smtp_send(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """Send one message to one recipient over an open smtplib connection.

    smtplib.sendmail's transaction, replies and exceptions (SMTPSenderRefused,
    SMTPRecipientsRefused, SMTPDataError; SMTPServerDisconnected or OSError when the
    connection is gone), with two differences: when the server offers PIPELINING
    (RFC 2920), MAIL, RCPT and DATA go out in one write and their replies are read
    together, saving two round trips per message; and dot-stuffing is dot_stuffed().
    """
    smtp.ehlo_or_helo_if_needed()
    mail, rcpt = envelope_commands(smtp, sender, recipient, len(data))
    if smtp.does_esmtp and smtp.has_extn("pipelining"):
        smtp.send(f"{mail}\r\n{rcpt}\r\nDATA\r\n")
        replies = [smtp.getreply() for _ in range(3)]
    else:
        replies = [smtp.docmd(mail), (0, b""), (0, b"")]
        if replies[0][0] == 250:
            replies[1] = smtp.docmd(rcpt)
            if replies[1][0] in (250, 251):
                replies[2] = smtp.docmd("DATA")
    error = envelope_refused(smtp, sender, recipient, replies)
    if error is not None:
        raise error
    smtp.send(dot_stuffed(data))
    code, reply = smtp.getreply()
    if code != 250:
        transaction_end(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def envelope_commands(smtp: smtplib.SMTP, sender: str, recipient: str, size: int) -> tuple[str, str]:
    """The MAIL (with SIZE when the server takes it) and RCPT commands of one message."""
    size_parameter = f" SIZE={size}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    return f"MAIL FROM:{smtplib.quoteaddr(sender)}{size_parameter}", f"RCPT TO:{smtplib.quoteaddr(recipient)}"


def envelope_refused(smtp: smtplib.SMTP, sender: str, recipient: str, replies: list[tuple[int, bytes]]):
    """Check the replies to MAIL, RCPT and DATA; None when the server waits for the content.

    Otherwise end the transaction as sendmail does and return the refusal to raise:
    SMTPSenderRefused, SMTPRecipientsRefused or SMTPDataError (code 0: not sent).
    """
    (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = replies
    if mail_code == 250 and rcpt_code in (250, 251) and data_code == 354:
        return None
    if data_code == 354:
        smtp.send(b".\r\n")  # the server opened DATA for a failed transaction: close it empty
        smtp.getreply()
    if mail_code != 250:
        code, error = mail_code, smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    elif rcpt_code not in (250, 251):
        code, error = rcpt_code, smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
    else:
        code, error = data_code, smtplib.SMTPDataError(data_code, data_reply)
    transaction_end(smtp, code)
    return error


def transaction_end(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal, as sendmail does: close on 421 (the server is leaving), else RSET."""
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def fast_path_for(connection) -> bool:
    """Use the fast path only with exactly Django's SMTP backend.

    It writes bytes to the backend's smtplib connection, bypassing send_messages(); a
    subclass (one that signs with DKIM, say) must keep its own send_messages().
    """
    return type(connection) is SMTPBackend


def pipelines(backend) -> bool:
    """Whether the backend's open SMTP connection offers PIPELINING (RFC 2920)."""
    smtp = getattr(backend, "connection", None)
    if smtp is None:
        return False
    try:
        smtp.ehlo_or_helo_if_needed()
    except (smtplib.SMTPException, OSError):
        return False  # the transaction that follows finds out, and reconnects
    return bool(smtp.does_esmtp and smtp.has_extn("pipelining"))


def no_delay(backend) -> None:
    """Send each command at once: every write is a whole command, so Nagle's algorithm (waiting
    for the previous segment's ACK, which the peer may delay by 40 ms) only adds round trips."""
    sock = getattr(getattr(backend, "connection", None), "sock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
