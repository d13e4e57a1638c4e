"""Turn one validated wire event into observations: page hits, touches, conversions, id links."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from attribution.channels import ChannelRules, TrafficSignals, classify
from attribution.observations import Observation, PageHit
from attribution.policy import Config, ConversionRule, RoutingRule
from schemas.records import Conversion, IdentityLink, InteractionKind, LinkKind, Touch
from schemas.wire import MAX_MONEY, WireEvent


def signals_of(event: WireEvent) -> TrafficSignals:
    campaign = event.context.campaign
    page = event.context.page
    props = event.properties
    return TrafficSignals(
        utm_source=(campaign.source if campaign else None) or _str(props.get("utm_source")),
        utm_medium=(campaign.medium if campaign else None) or _str(props.get("utm_medium")),
        utm_campaign=(campaign.name if campaign else None) or _str(props.get("utm_campaign")),
        referrer=(page.referrer if page else None) or _str(props.get("referrer")),
        page_url=(page.url if page else None) or _str(props.get("url")),
        explicit_channel=_str(props.get("channel")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _identity_links(event: WireEvent, time: datetime) -> list[IdentityLink]:
    links: list[IdentityLink] = []
    if event.type == "alias":
        assert event.previous_id is not None and event.user_id is not None
        links.append(
            IdentityLink(event_id=event.message_id, time=time, kind=LinkKind.ALIAS,
                         from_id=event.previous_id, to_id=event.user_id)
        )
    if event.anonymous_id and event.user_id:
        links.append(
            IdentityLink(event_id=event.message_id, time=time, kind=LinkKind.ANONYMOUS_PERSON,
                         from_id=event.anonymous_id, to_id=event.user_id)
        )
    if event.group_id and (event.user_id or event.anonymous_id):
        member = event.user_id or event.anonymous_id
        assert member is not None
        links.append(
            IdentityLink(event_id=event.message_id, time=time, kind=LinkKind.PERSON_ACCOUNT,
                         from_id=member, to_id=event.group_id)
        )
    return links


def conversion_value(props: dict[str, Any], rule: ConversionRule) -> float:
    """The first usable value field: a finite number (or numeric text) in [0, MAX_MONEY].
    Configured value fields need not be wire money fields, so the bound is applied here too."""
    for name in rule.value_fields:
        value = props.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= MAX_MONEY:
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number) and 0 <= number <= MAX_MONEY:
                return number
    return 0.0


def _matches(route: RoutingRule, kind: str, event: str, value: float, props: dict[str, Any],
             source: str | None) -> bool:
    if route.kinds and kind not in route.kinds:
        return False
    if route.events and event not in route.events:
        return False
    if route.min_value is not None and value < route.min_value:
        return False
    if route.max_value is not None and value > route.max_value:
        return False
    if route.sources and source not in route.sources:
        return False
    for name, wanted in route.properties.items():
        actual = props.get(name)
        options = wanted if isinstance(wanted, list) else [wanted]
        if actual not in options:
            return False
    return True


def route_policy(config: Config, rule: ConversionRule, event: str, value: float,
                 props: dict[str, Any], source: str | None = None) -> str:
    """The first routing rule that matches wins; otherwise the conversion rule's policy."""
    for route in config.routing:
        if _matches(route, rule.kind, event, value, props, source):
            return route.policy
    return rule.policy


def _conversion(event: WireEvent, time: datetime, rule: ConversionRule, config: Config,
                source: str | None) -> Conversion:
    props = event.properties
    value = conversion_value(props, rule)
    raw_id = props.get(rule.id_field)
    local_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id) else event.message_id
    currency = props.get(rule.currency_field)
    return Conversion(
        conversion_id=f"{rule.kind}:{local_id}",
        event_id=event.message_id,
        time=time,
        kind=rule.kind,
        event=event.event or "",
        policy=route_policy(config, rule, event.event or "", value, props, source),
        value=value,
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        anonymous_id=event.anonymous_id,
        person_id=event.user_id,
        account_id=event.group_id,
        properties=props,
    )


def normalize(event: WireEvent, time: datetime, config: Config, rules: ChannelRules,
              source: str | None = None) -> list[Observation]:
    """All observations of one event, in a fixed order: links first, then the fact."""
    out: list[Observation] = list(_identity_links(event, time))
    if event.type in ("page", "screen"):
        out.append(
            PageHit(event_id=event.message_id, time=time, anonymous_id=event.anonymous_id,
                    person_id=event.user_id, account_id=event.group_id,
                    signals=signals_of(event), properties=event.properties)
        )
    elif event.type == "track":
        name = event.event or ""
        conversion_rule = config.conversion_rule(name)
        if conversion_rule is not None:
            out.append(_conversion(event, time, conversion_rule, config, source))
        else:
            interaction = config.interaction_rule(name)
            if interaction is not None:
                out.append(_interaction_touch(event, time, interaction.kind, interaction.channel,
                                              rules))
    return out


def _interaction_touch(event: WireEvent, time: datetime, kind: InteractionKind,
                       default_channel: str | None, rules: ChannelRules) -> Touch:
    signals = signals_of(event)
    if signals.explicit_channel is None and default_channel is not None and not (
        signals.utm_source or signals.utm_medium
    ):
        signals = TrafficSignals(
            utm_source=signals.utm_source, utm_medium=signals.utm_medium,
            utm_campaign=signals.utm_campaign, referrer=None, page_url=None,
            explicit_channel=default_channel,
        )
    classified = classify(signals, rules)
    return Touch(
        event_id=event.message_id, time=time, anonymous_id=event.anonymous_id,
        person_id=event.user_id, account_id=event.group_id, channel=classified.channel,
        source=classified.source, medium=classified.medium, campaign=classified.campaign,
        kind=kind, properties={"event": event.event, **event.properties},
    )
