"""Segment's pixel API without base64, as email clients fetch it: the URL is taken from an
email's HTML (entities decoded, as a mail client does) and fetched with a mail proxy's user
agent; the events reach the topic. Over real HTTP against the real broker."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from streams.broker import EmbeddedBroker
from streams.collector import RunningCollector
from streams.collector.privacy import hash_email
from tests.streams import test_collector as base
from tests.streams.test_collector import SECRET, WRITE_KEY, all_events, get_pixel, produced

topic, make_collector, collector, http = (base.topic, base.make_collector, base.collector,
                                          base.http)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Gmail fetches images through its proxy; Apple Mail and Outlook with their own agents.
MAIL_AGENTS = [
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
]


def email_html(src: str) -> str:
    """How a mailer writes a pixel into a newsletter: & as &amp; in the attribute."""
    return (f'<html><body><p>The Electric Daily</p><img src="{html.escape(src)}" width="1" '
            'height="1" alt="" style="display:none"></body></html>')


def src_of(body: str) -> str:
    """What a mail client fetches: the src attribute with its entities decoded."""
    found = re.search(r'<img src="([^"]*)"', body)
    assert found is not None
    return html.unescape(found.group(1))


async def fetch_pixel(http: aiohttp.ClientSession, url: str, agent: str) -> None:
    async with http.get(url, headers={"User-Agent": agent}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/gif"
        await resp.read()


async def test_unencoded_pixels_from_email_html_reach_the_topic(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str) -> None:
    base_url = f"{collector.url}/v1/pixel"
    sources = [
        # The example of Segment's pixel documentation, percent-encoded as a mailer does.
        f"{base_url}/track?userId=user_123&event=Email%20Opened"
        "&properties.subject=The%20Electric%20Daily&properties.email=jane.kim%40example.com"
        f"&writeKey={WRITE_KEY}",
        # The URL, with form-style "+" for spaces and nested campaign context.
        f"{base_url}/track?writeKey={WRITE_KEY}&userId=u-spring&event=Email+Opened"
        "&properties.campaign=spring&context.campaign.source=newsletter"
        "&context.campaign.medium=email&context.campaign.name=spring",
        # Bracketed names (Rails/PHP query builders) and an email address as the id.
        f"{base_url}/track?writeKey={WRITE_KEY}&userId=bob%40example.com"
        "&event=Email%20Opened&properties[campaign]=autumn&properties[variant]=B",
        # A page view pixel with a timestamp and an anonymous id.
        f"{base_url}/page?writeKey={WRITE_KEY}&anonymousId=anon-mail-7&name=Newsletter"
        "&timestamp=2024-05-01T08%3A00%3A00Z&properties.url=https%3A%2F%2Fshop.example%2F",
        # "base64 is optional": the data parameter as URL-encoded JSON.
        f"{base_url}/track?data=" + quote(orjson.dumps({
            "writeKey": WRITE_KEY, "userId": "u-json", "event": "Email Clicked",
            "properties": {"link": "https://shop.example/?a=1&b=2"}}).decode(), safe=""),
    ]
    for index, src in enumerate(sources):
        await fetch_pixel(http, src_of(email_html(src)), MAIL_AGENTS[index % len(MAIL_AGENTS)])
    # A mailer that wrote "&amp;" into the URL itself (the client sends "amp;userId=...").
    broken = (f"{base_url}/track?writeKey={WRITE_KEY}&amp;userId=u-amp&amp;event=Email%20Opened"
              "&amp;properties.campaign=amp")
    await fetch_pixel(http, broken, MAIL_AGENTS[0])

    events = {e["userId"]: e for e in all_events(await produced(broker.bootstrap, topic))
              if "userId" in e}
    events.update({e["anonymousId"]: e for e in all_events(await produced(broker.bootstrap,
                                                                           topic))
                   if "anonymousId" in e})
    assert collector.state.stats.pixel_errors == {}
    doc = events["user_123"]
    assert (doc["type"], doc["event"], doc["source"]) == ("track", "Email Opened", "web")
    assert doc["properties"] == {"subject": "The Electric Daily",
                                 "email": hash_email("jane.kim@example.com", SECRET)}
    spring = events["u-spring"]
    assert spring["event"] == "Email Opened" and spring["properties"] == {"campaign": "spring"}
    assert spring["context"]["campaign"] == {"source": "newsletter", "medium": "email",
                                             "name": "spring"}
    assert "writeKey" not in spring
    bob = events[hash_email("bob@example.com", SECRET)]
    assert bob["properties"] == {"campaign": "autumn", "variant": "B"}
    page = events["anon-mail-7"]
    assert (page["type"], page["name"]) == ("page", "Newsletter")
    assert page["timestamp"] == "2024-05-01T08:00:00Z"
    assert page["properties"]["url"] == "https://shop.example/"
    assert events["u-json"]["properties"]["link"] == "https://shop.example/?a=1&b=2"
    assert events["u-amp"]["properties"] == {"campaign": "amp"}


@pytest.mark.parametrize(("query", "reason"), [
    ("userId=u&event=Email%20Opened", "missing_write_key"),
    (f"writeKey={WRITE_KEY}&event=Email%20Opened", "invalid_event"),  # no id
    (f"writeKey={WRITE_KEY}&userId=u", "invalid_event"),  # a track call needs an event
    (f"writeKey={WRITE_KEY}&userId=u&event=E&properties=x&properties.a=b",
     "conflicting_parameters"),
    (f"writeKey={WRITE_KEY}&userId=u&event=E&" + ".".join(["p"] * 40) + "=deep",
     "bad_parameter_name"),
    (f"writeKey={WRITE_KEY}&userId=u&event=E&properties..a=b", "bad_parameter_name"),
    ("data=%7Bnot%20json", "bad_json"),
])
async def test_bad_unencoded_pixels_answer_the_gif_and_are_counted(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str, query: str, reason: str) -> None:
    await get_pixel(http, f"{collector.url}/v1/pixel/track?{query}")
    assert collector.state.stats.pixel_errors == {reason: 1}
    assert all_events(await produced(broker.bootstrap, topic)) == []
