"""Privacy commands: erase one person's or account's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.options import BrokerOpt, ConfigOpt, WarehouseOpt, err, read_config_text


def erase(
    user_id: Annotated[str | None, typer.Option(help="Erase this user and every device "
                                                "and alias linked to them.")] = None,
    anonymous_id: Annotated[str | None, typer.Option(help="Erase the person this "
                                                     "anonymous id belongs to.")] = None,
    account_id: Annotated[str | None, typer.Option(help="Erase this account's rows "
                                                   "(its contacts are separate people).")] = None,
    warehouse: WarehouseOpt = Path("warehouse"),
    broker: BrokerOpt = None,
    config: ConfigOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the stream.")] = 120.0,
) -> None:
    """Remove a person's (or account's) touches, conversions, identity links and credits from
    live stream state (with a broker) and from the warehouse, and record the erasure
    (without the ids) in the `erasures` table. Run it with the workers up."""
    import asyncio
    import uuid

    from attribution.defaults import load_config
    from streams.broker import broker_from_env
    from streams.erase import erase_marker, send_erase_marker
    from streams.settings import stream_settings
    from streams.worker import wait_until_landed
    from warehouse.erase import Audit, ErasureBlocked, Subject, erase_warehouse, subject_ids
    from warehouse.layout import exists
    from warehouse.lock import LockLost
    from warehouse.storage import display
    from warehouse.views import create_views

    given = [(Subject.USER_ID, user_id), (Subject.ANONYMOUS_ID, anonymous_id),
             (Subject.ACCOUNT_ID, account_id)]
    chosen = [(subject, value) for subject, value in given if value]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --user-id, --anonymous-id, --account-id")
    subject, value = chosen[0]
    assert value is not None
    if not exists(warehouse):
        raise typer.BadParameter(f"no warehouse at {display(warehouse)}")
    erasure_id = uuid.uuid4().hex
    bootstrap = broker_from_env(broker)
    if bootstrap is not None:
        # Catch up first, so the identity links that name every id of the person are landed.
        settings = stream_settings(load_config(read_config_text(config)).stream)
        wait_until_landed(bootstrap, settings, timeout=timeout)
    ids = subject_ids(warehouse, subject, value)
    if bootstrap is not None:
        # Stream next: once the marker has passed every stage, nothing landed later can
        # bring the rows back, so the warehouse rewrite below is final.
        marker = erase_marker(erasure_id, ids)
        asyncio.run(send_erase_marker(bootstrap, settings.topic("events"), settings.partitions,
                                      marker))
        wait_until_landed(bootstrap, settings, timeout=timeout)
    else:
        err.print("[yellow]no broker given: erasing the warehouse only; live stream state "
                  "keeps the data until the next erase with --broker[/yellow]")
    audit = Audit(erasure_id, subject, len(ids), stream_state=bootstrap is not None)
    try:
        report = erase_warehouse(warehouse, ids, audit)
    except (ErasureBlocked, LockLost) as exc:
        err.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    create_views(warehouse)
    print(json.dumps({"erasure_id": erasure_id, "subject": str(subject), "ids_erased": len(ids),
                      "rows_removed": report.rows_removed,
                      "files_rewritten": report.files_rewritten,
                      "stream_state": bootstrap is not None}))


COMMANDS = [erase]
