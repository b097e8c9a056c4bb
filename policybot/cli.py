"""The ``policybot`` command line.

    policybot [--config FILE] [--db URL] COMMAND ...

Commands: ``run`` (every configured channel), ``chat`` (terminal conversation), ``ask`` (answer
questions, ``--json`` for one JSON object a line, ``-`` to read questions from standard input),
``kb import|list|show|stats|export``, ``staff add|list|disable|enable|reset-password``, ``gaps`` and ``purge``. Heavy modules are imported per command so
that ``ask`` starts quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings
from knowledge.importers.base import KINDS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests can inspect it)."""
    p = argparse.ArgumentParser(prog="policybot", description="政策与办事咨询机器人 policybot")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (default: $POLICYBOT_CONFIG or built-in defaults)",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="database URL, overrides [database] url (sqlite:///x.db, postgresql://u@h/db)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="start every configured channel (web chat and console; Telegram with a token)")
    sub.add_parser("chat", help="talk to the bot in this terminal")

    ask = sub.add_parser("ask", help="answer questions (use - to read one question a line from stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object a line")
    ask.add_argument(
        "--explain", action="store_true", help="print the candidates, their features and the confidence"
    )
    ask.add_argument("questions", nargs="+", metavar="QUESTION")

    kb = sub.add_parser("kb", help="manage the knowledge base").add_subparsers(
        dest="kb_command", required=True
    )
    imp = kb.add_parser("import", help="import .jsonl/.csv FAQ, .md guides/policies, .txt/.docx documents")
    imp.add_argument("paths", nargs="*", metavar="PATH")
    imp.add_argument("--default", action="store_true", help="import the shipped default knowledge base")
    lst = kb.add_parser("list", help="list entries")
    lst.add_argument("--kind", choices=list(KINDS))
    lst.add_argument("--category")
    lst.add_argument("--status", choices=["published", "draft", "expired"])
    show = kb.add_parser("show", help="show one entry")
    show.add_argument("id")
    kb.add_parser("stats", help="counts by kind, status and category")
    exp = kb.add_parser("export", help="write every entry as JSON lines (imports back unchanged)")
    exp.add_argument("-o", "--output", metavar="FILE", help="file to write (default: standard output)")

    gaps = sub.add_parser("gaps", help="questions not answered outright, grouped by need, largest first")
    gaps.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    gaps.add_argument(
        "--json",
        action="store_true",
        help='one object a line: {"label", "count", "questions", "nearest_entry_id"}',
    )

    purge = sub.add_parser(
        "purge", help="delete conversations, tickets and delivered messages past [privacy] retention_days"
    )
    purge.add_argument("--dry-run", action="store_true", help="print what would be deleted; change nothing")

    staff = sub.add_parser("staff", help="manage staff console accounts").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser(
        "add", help="create a staff account (asks for the password, or $POLICYBOT_STAFF_PASSWORD)"
    )
    add.add_argument("name")
    add.add_argument("--telegram-id", type=int, help="the member's Telegram user id (optional)")
    add.add_argument("--office", help="one of [staff] offices (default: [staff] default_office)")
    add.add_argument(
        "--role",
        choices=["agent", "editor", "admin"],
        help="agent works tickets; editor also approves knowledge; admin also manages accounts "
        "(default: admin for the first account, agent after)",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    staff.add_parser("list", help="list the accounts with office, role and state")
    dis = staff.add_parser("disable", help="disable an account (it can no longer log in)")
    dis.add_argument("name")
    en = staff.add_parser("enable", help="enable a disabled account again")
    en.add_argument("name")
    reset = staff.add_parser("reset-password", help="set a new password (ends the account's sessions)")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    return p


def load(args: argparse.Namespace) -> Settings:
    """Settings from --config / $POLICYBOT_CONFIG, with --db applied."""
    path = args.config or os.environ.get("POLICYBOT_CONFIG") or None
    settings = load_settings(path)
    if args.db:
        settings = settings.replace("database", url=args.db)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``policybot`` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = load(args)
    except ConfigError as exc:
        print(f"policybot: config error: {exc}", file=sys.stderr)
        return 2
    from bot.logs import secrets_of, setup_logging

    level = settings.logging.level if args.command == "run" else "WARNING"
    setup_logging(level, settings.logging.format, secrets_of(settings))
    try:
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``policybot kb list | head``): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a clear message instead of a traceback for operational errors
        from knowledge.db import DatabaseURLError
        from knowledge.importers import ImportFailure
        from knowledge.schema import SchemaError

        if isinstance(exc, ImportFailure | DatabaseURLError | SchemaError | ConfigError | OSError):
            print(f"policybot: {exc}", file=sys.stderr)
            return 1
        raise


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from policybot.run import run_forever

        return await run_forever(settings)
    if args.command == "chat":
        from handlers.terminal import run_terminal_chat

        return await run_terminal_chat(settings)
    if args.command == "ask":
        return await _ask(args, settings)
    if args.command == "kb":
        return await _kb(args, settings)
    if args.command == "staff":
        return await _staff(args, settings)
    if args.command == "gaps":
        return await _gaps(args, settings)
    if args.command == "purge":
        return await _purge(args, settings)
    raise AssertionError(args.command)  # pragma: no cover - argparse guarantees a known command


EMPTY_KB_HINT = (
    "policybot: the knowledge base is empty, so every question goes to staff; "
    "`policybot kb import --default` loads the shipped one, `kb import PATH...` your own"
)


async def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import Services

    services = await Services.start(settings)
    try:
        if await services.kb.count() == 0:
            # ``ask`` never loads knowledge itself (an FAQ imported next would be mixed with it)
            print(EMPTY_KB_HINT, file=sys.stderr)
        if args.questions == ["-"]:
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    break
                await _answer_one(services, line.rstrip("\r\n"), args.json, args.explain)
        else:
            for q in args.questions:
                await _answer_one(services, q, args.json, args.explain)
    finally:
        await services.close()
    return 0


async def _answer_one(services, question: str, as_json: bool, explain: bool = False) -> None:
    if explain:
        found = await services.qa.explain_decision(question)
        print(json.dumps(found, ensure_ascii=False) if as_json else _explained_text(found), flush=True)
        return
    decision = await services.qa.ask(question)
    if as_json:
        print(json.dumps(decision.to_json(), ensure_ascii=False), flush=True)
        return
    from bot.render import decision_text

    print(f"问：{question.strip()}", flush=True)
    print(decision_text(decision), flush=True)
    print(flush=True)


HELD = {  # why ``ask --explain`` shows a confident best entry not answered (bot/confidence.py)
    "tied": "another answer scores as high and nothing tells them apart (tied)",
    "crowded": "other entries of its kind are titled with every word of the question its title holds:"
    " the question names a kind of matter, not this one (crowded)",
    "thin": "it holds too little of the question, none of it in its title or questions, the short"
    " question names nothing its own question is about, or the question only asks, naming no matter (thin)",
    "part": "it is a policy's Q&A whose own questions ask in only some of the forms the question's clauses"
    " ask in: it answers a part, the policy the whole (part)",
    "referred": "the question asks for the matter a referral's title or question names, which this entry"
    " names only in passing: another body's matter (referred)",
}


def _explained_text(found: dict) -> str:
    """``ask --explain`` for people: the decision, then one block a candidate with its features."""
    lines = [
        f"{found['question']}",
        f"  -> {found['status']}  entry {found['entry_id']}  confidence {found['confidence']:.3f}"
        f" (answers at >= {found['precision']})  aspect {found['aspect']}",
        *([f"  held back: {HELD[found['held']]}"] if found.get("held") else []),
        "  words: " + " ".join(f"{w}:{v}" for w, v in found["words"].items()),
    ]
    for i, c in enumerate(found["candidates"], 1):
        lines.append(
            f"  {i}. {c['entry_id']} [{c['kind']}] {c['title']}  score {c['score']:.3f}"
            f"  question_sim {c['question_sim']:.3f}  probability {c['probability']:.3f}"
        )
        lines.append("     " + " ".join(f"{k}={v}" for k, v in c["features"].items()))
    return "\n".join(lines) + "\n"


async def _kb(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import Services

    # (an import loads the index itself, once, after writing: see KnowledgeBase.import_paths)
    services = await Services.start(settings, build_index=False)
    try:
        kb = services.kb
        if args.kb_command == "import":
            from knowledge.bulk import IMPORT_ACTOR
            from knowledge.store import default_paths

            paths = list(args.paths) + ([str(p) for p in default_paths()] if args.default else [])
            if not paths:
                print("policybot: kb import needs PATH... or --default", file=sys.stderr)
                return 2
            counts = await kb.import_paths(paths, actor=IMPORT_ACTOR)
            print(f"imported: {counts}")
        elif args.kb_command == "list":
            print("id\tkind\tstatus\tcategory\ttitle")
            for e in await kb.entries(args.kind, args.category, args.status, limit=1_000_000):
                print(f"{e.id}\t{e.kind}\t{e.status}\t{e.category}\t{e.title or e.question}")
        elif args.kb_command == "show":
            entry = await kb.get(args.id)
            if entry is None:
                print(f"policybot: no entry {args.id!r}", file=sys.stderr)
                return 1
            from knowledge.importers import entry_to_parsed

            print(json.dumps(entry_to_parsed(entry).as_record(), ensure_ascii=False, indent=2))
        elif args.kb_command == "stats":
            await kb.load_index()  # what is really indexed (from the saved index files when usable)
            print(json.dumps(await kb.stats(), ensure_ascii=False, indent=2))
        elif args.kb_command == "export":
            lines = await kb.export_lines()
            text = "".join(line + "\n" for line in lines)
            if args.output:
                await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
                print(f"exported {len(lines)} entries to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(text)
    finally:
        await services.close()
    return 0


async def _gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.gaps import fill_nearest, find_gaps
    from bot.services import Services

    if not 1 <= args.days <= 3660:
        print("policybot: gaps --days must be between 1 and 3660", file=sys.stderr)
        return 2
    services = await Services.start(settings)
    try:
        gaps = await find_gaps(services.sessions, services.kb.lex, days=args.days)
        fill_nearest(gaps, services.kb.matcher, limit=len(gaps))
    finally:
        await services.close()
    from bot.privacy import mask

    for g in gaps:
        g.label, g.questions = mask(g.label), [mask(q) for q in g.questions]
        if args.json:
            print(json.dumps(g.to_json(), ensure_ascii=False), flush=True)
            continue
        channels = "，".join(f"{c} {n}" for c, n in g.channels.items())
        print(f"{g.count}\t{g.label}\t（{channels}；最近的条目：{g.nearest_entry_id or '无'}）")
        for q in g.questions[1:6]:
            print(f"\t- {q}")
    return 0


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo

    from bot.retention import purge, purge_before
    from bot.services import Services
    from knowledge.models import utcnow

    tz = ZoneInfo(settings.staff.timezone)
    services = await Services.start(settings, build_index=False)
    try:
        counts = await purge(
            services.engine, services.sessions, tz, settings.privacy.retention_days, dry_run=args.dry_run
        )
    finally:
        await services.close()
    mark = purge_before(utcnow(), tz, settings.privacy.retention_days)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"purge: rows from before {mark} ({settings.privacy.retention_days} days); {verb}:")
    print("\n".join(counts.lines()))
    return 0


async def _staff(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import Services
    from bot.staff_accounts import StaffAccountError, check_office, check_password, read_password

    cmd = args.staff_command
    try:
        password = ""
        if cmd in ("add", "reset-password"):
            password = (
                check_password(sys.stdin.readline().rstrip("\r\n"))
                if args.password_stdin
                else read_password()
            )
        office = ""
        if cmd == "add":
            office = check_office(args.office or settings.staff.default_office, settings.staff.offices)
    except StaffAccountError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    services = await Services.start(settings, build_index=False)
    try:
        print(await _staff_command(services, args, password, office))
    except StaffAccountError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 1
    finally:
        await services.close()
    return 0


async def _staff_command(services, args: argparse.Namespace, password: str, office: str) -> str:
    """Run one ``staff`` subcommand; return what to print."""
    from bot.staff_accounts import create_account, list_accounts, reset_password, set_active

    cmd, sessions = args.staff_command, services.sessions
    if cmd == "add":
        account = await create_account(
            sessions, args.name, password, args.telegram_id, office=office, role=args.role
        )
        return f"staff account {args.name!r} created ({account.office}, {account.role})"
    if cmd == "list":
        rows = await list_accounts(sessions)
        lines = [
            f"{a.name}\t{a.office or '-'}\t{a.role}\t{'active' if a.active else 'disabled'}" for a in rows
        ]
        return "\n".join(["name\toffice\trole\tstate", *lines])
    if cmd in ("disable", "enable"):
        await set_active(sessions, args.name, cmd == "enable")
        return f"staff account {args.name!r} {cmd}d"
    await reset_password(sessions, args.name, password)
    return f"password of {args.name!r} changed; its sessions were ended"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
