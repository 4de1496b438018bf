"""Sign-in by a trusted proxy: a header says who the person is.

The header is believed only from a peer address in ``web.auth.trusted_proxies``: the
address of the TCP connection itself. ``X-Forwarded-For`` and ``Forwarded`` are never
read, since any client can write them. From anywhere else the headers are ignored
(and the attempt logged with the peer address), so reaching the router around the
proxy gets nobody in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web

from router.adapters.web.access import Viewer
from router.adapters.web.config import WebAuthConfig
from router.adapters.web.directory import DirectoryUnavailable, UserDirectory

log = logging.getLogger(__name__)


class ProxyRefused(Exception):
    """The proxy vouched for someone the console cannot let in; ``status`` says how."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Claim:
    """Who the proxy says is asking."""

    user: str | None
    email: str | None


def peer_address(request: web.Request) -> IPv4Address | IPv6Address | None:
    # The transport's peer, not request.remote: a middleware may have rewritten that
    # from X-Forwarded-For.
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    try:
        address = ip_address(peer[0] if isinstance(peer, tuple) else peer)
    except ValueError:
        return None  # a Unix socket: no address to trust
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ProxySignIn:
    def __init__(self, config: WebAuthConfig, directory: UserDirectory | None) -> None:
        self.config = config
        self.directory = directory

    def trusted(self, request: web.Request) -> bool:
        address = peer_address(request)
        return address is not None and any(
            address.version == net.version and address in net for net in self.config.trusted_proxies
        )

    def claim(self, request: web.Request) -> Claim | None:
        """What the headers say, or None when they say nothing or are not believed."""
        user = request.headers.get(self.config.proxy_header, "").strip() or None
        email = request.headers.get(self.config.email_header, "").strip() or None
        if user is None and email is None:
            return None
        if not self.trusted(request):
            log.warning(
                "console: sign-in headers from %s ignored: not in web.auth.trusted_proxies",
                peer_address(request),
            )
            return None
        return Claim(user, email)

    async def viewer(self, claim: Claim) -> Viewer:
        if self.directory is None:
            # No Slack to ask (no bot token): the proxy's user header is the person's
            # id (oauth2-proxy signing in with Slack sends the Slack user id there),
            # else the e-mail, which on-call rotations may list as well.
            ident = claim.user or claim.email or ""
            return Viewer(ident, ident, claim.email, "proxy")
        if claim.email is None:
            if claim.user is not None:
                # Only the user header: it is the person's id as the proxy knows it
                # (the Slack user id when oauth2-proxy signs in with Slack).
                return Viewer(claim.user, claim.user, None, "proxy")
            raise ProxyRefused(
                401,
                "no_email",
                f"The sign-in proxy sent no {self.config.email_header} header, so the "
                "console cannot tell which Slack user you are.",
            )
        try:
            found = await self.directory.user_for_email(claim.email)
        except DirectoryUnavailable:
            raise ProxyRefused(
                503, "directory_unavailable", "Slack could not be asked who you are; try again."
            ) from None
        if found is None:
            raise ProxyRefused(
                403,
                "not_in_workspace",
                "Your e-mail address belongs to no member of the Slack workspace, so the "
                "console does not know you as a responder.",
            )
        return Viewer(found.user, found.name, claim.email, "proxy")
