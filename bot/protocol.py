"""The conversation protocol: button actions and typed commands, created and parsed here only.

An action is the string a channel carries back when a user presses a button (Telegram's callback data,
the web chat's ``/api/action``, a number typed in the terminal). Every action the core offers is made by
the builders below, and ``parse_action`` is the only parser of them; a malformed or unknown action raises
``ActionError``. Commands (``/human``, ``/status``...) are parsed by ``parse_command``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.messages import Button
from knowledge.smalltalk import phrasings

ActionKind = Literal[
    "pick", "feedback", "escalate", "human", "cancel", "status", "cat", "entry",
    "subscribe", "unsubscribe", "subscriptions", "follow", "unfollow", "unsub", "digest", "read",
    "rate", "rel",
]  # fmt: skip
CommandName = Literal[
    "start", "help", "human", "status", "cancel", "subscribe", "unsubscribe", "subscriptions", "comment"
]

COMMAND_NAMES: tuple[CommandName, ...] = (
    "start", "help", "human", "status", "cancel", "subscribe", "unsubscribe", "subscriptions", "comment",
)  # fmt: skip
PUSH_KINDS: tuple[ActionKind, ...] = (
    "subscribe", "unsubscribe", "subscriptions", "follow", "unfollow", "unsub", "digest", "read",
)  # fmt: skip
MAX_BUTTON_ACTION = 64  # bytes: Telegram's callback data limit; a longer action is not offered as a button
RATING_KINDS = (
    "feedback:",
    "rate:",
)  # 有用 / 没解决 under an answer, 满意 / 一般 / 不满意 under a staff reply
CHOICE_KINDS = (
    "pick:",
    "escalate:",
    "rel:",
    "entry:",
    "cat:",
    "read:",
    *RATING_KINDS,
)  # numbered on a text-only channel
NUMBER = re.compile(r"[0-9]{1,12}")  # fullmatch: "$" would let "1\n" through
# The largest id an action (or any id from outside) may carry: the database's id columns are 32-bit
# INTEGER on PostgreSQL, so a larger one is no row's id, and querying it would be a database error.
MAX_ID = 2**31 - 1
MAX_ACTION = 256
# A whole message asking for a person (转人工) is the /human command said in words.
HUMAN_WORDS = frozenset(
    {"转人工", "人工", "人工服务", "人工客服", "转人工服务", "转人工客服", "转接人工", "我要人工", "我要转人工",
     "要人工", "找人工", "请转人工", "帮我转人工", "真人", "找真人", "真人客服", "我要找工作人员",
     "找工作人员", "联系工作人员", "转工作人员", "人工咨询", "工作人员", "联系人工", "接人工", "找个人工",
     "人工回复", "人工回答", "转真人", "找个真人", "有没有人工", "有人工吗", "人工在吗",
     "客服", "找客服", "转客服", "联系客服", "在线客服", "我要客服", "人工在线客服"}
)  # fmt: skip
# ... and the other two a chat user may type in words instead of a command (/status, /cancel).
STATUS_WORDS = frozenset(
    {"进度", "查看进度", "查进度", "查询进度", "处理进度", "工单进度", "我的工单", "我的工单进度", "工单状态",
     "查工单", "查询工单", "问题进度", "我的问题进度", "处理到哪了", "有回复了吗", "回复了吗", "有人回复吗"}
)  # fmt: skip
# ... and, beyond those words, a whole message asking how the user's own question stands, in words of
# asking, of "my question" and of progress or a reply only: 查一下进度, 我的工单怎么样了, 有人回复了吗,
# 工作人员回复了没有. A message naming a matter (备案办理进度怎么查, 信息公开申请多久答复) is a question.
_STATUS_ASK = r"(?:请|麻烦|帮我|帮忙|我想|我要|想|要)*(?:查|查查|查一下|查下|查看|查询|看|看看|看一下|看下|问问|问一下|问下)?"
_STATUS_MINE = r"(?:(?:我|我们)的?)?(?:提交的|问的|反映的|留言的|咨询的)?"
_STATUS_QUESTION = _STATUS_MINE + r"(?:问题|工单|留言)"
_STATUS_WHO = r"(?:工作人员|人工|客服|你们|有人)"
STATUS_SAID = re.compile(
    "|".join(
        (  # 帮我查一下进度, 我的问题处理进度怎么样了
            _STATUS_ASK + r"(?:" + _STATUS_QUESTION + r"的?)?(?:处理)?(?:进度|进展|状态)"
            r"(?:怎么样|咋样|如何|到哪了|到哪一步了|到哪儿了)?了?(?:呢|吗|啊|呀)?",
            # 我的工单怎么样了
            _STATUS_QUESTION + r"(?:处理得?)?(?:怎么样|咋样|如何|到哪)了?(?:呢|吗|啊|呀)?",
            # 有人回复了吗, 我提交的问题有回复了吗, 我的问题有人处理吗
            r"(?:" + _STATUS_QUESTION + r")?" + _STATUS_WHO + r"?有?(?:回复|答复|人处理)(?:我)?了?(?:吗|没)",
            _STATUS_WHO + r"(?:回我|处理)了(?:吗|没)",  # 客服回我了吗, 你们处理了没
            # 进度查一下, 我的工单进度帮我查查, 查询一下我的工单
            r"(?:" + _STATUS_QUESTION + r"的?)?(?:处理)?(?:进度|进展|状态)(?:帮我|麻烦)?"
            r"(?:查|查查|查一下|查下|看看|看一下|看下)(?:吧|呗)?",
            r"(?:请|麻烦|帮我|帮忙|我想|我要|想|要)*(?:查|查查|查一下|查下|查看|查询|查询一下|看看|看一下|看下)"
            + _STATUS_QUESTION
            + r"(?:吧|呗)?",
            # 还没人回复吗, 怎么还没人回, 等了好久了还没回复
            r"(?:等了?(?:好久|很久|半天|这么久)了?)?(?:怎么|为什么|为啥|咋)?(?:还|都|一直)?没(?:有)?人?"
            r"(?:回复|答复|回|理|处理)(?:我)?(?:吗|呢|啊|呀)?",
        )
    )
)
# ... and the same for a person (能不能转人工, 请帮我转接人工客服) and for withdrawing (撤回我的工单).
_PLEASE = r"(?:请|麻烦|帮我|帮忙|给我|我要|我想|想|要|能不能|能否|可不可以|可以|能)*"
HUMAN_SAID = re.compile(
    _PLEASE
    + r"(?:转|找|转接|接|联系)个?(?:人工|真人|工作人员)(?:客服|服务)?(?:吗|吧|呀|啊|好吗|可以吗|谢谢)?"
    r"|(?:人工|真人)(?:客服)?(?:在吗|在不在|呢)"
)
CANCEL_SAID = re.compile(
    _PLEASE
    + r"(?:(?:撤回|撤销)(?:我的|我)?(?:工单|问题|提问|人工)?|取消(?:我的|我)?(?:工单|问题|提问|人工))(?:吧|吗|了)?"
    r"|不用了?(?:撤回|撤销)(?:吧|了)?"
    # 我不要人工了, 不用转人工了, 算了不需要工作人员了: no longer wanting the person asked for
    r"|(?:算了)?(?:我)?(?:不要|不用|不需要|不想)(?:再)?(?:转|找|等)?(?:人工|真人|工作人员)(?:客服|服务)?(?:了|啦)(?:吧)?"
)
SAID_LONGEST = 20  # characters: a command said in words is short
SAID: tuple[tuple[CommandName, re.Pattern[str]], ...] = (
    ("human", HUMAN_SAID),
    ("status", STATUS_SAID),
    ("cancel", CANCEL_SAID),
)
CANCEL_WORDS = frozenset(
    {"撤回", "撤回工单", "取消工单", "撤销工单", "撤回问题", "撤回我的问题", "不用人工了", "不需要人工了",
     "取消人工", "取消转人工"}
)  # fmt: skip
# ... and the subscription commands (/subscribe, /unsubscribe, /subscriptions): asked how to subscribe,
# the bot shows the categories to subscribe to, which is the answer.
SUBSCRIBE_WORDS = frozenset(
    {"订阅", "我要订阅", "我想订阅", "订阅政策", "订阅更新", "订阅政策更新", "订阅政策推送", "订阅推送",
     "订阅通知", "订阅消息", "政策订阅", "政策推送", "怎么订阅", "如何订阅", "怎么订阅政策", "如何订阅政策",
     "怎么订阅政策更新", "如何订阅政策更新", "怎样订阅", "在哪订阅", "在哪里订阅", "我要订阅政策",
     "我想订阅政策", "我想订阅政策更新", "有新政策通知我", "新政策推送给我", "可以订阅吗", "能订阅吗"}
)  # fmt: skip
UNSUBSCRIBE_WORDS = frozenset(
    {"退订", "我要退订", "取消订阅", "怎么退订", "如何退订", "怎么取消订阅", "如何取消订阅", "退订推送",
     "取消推送", "关闭推送", "不要推送了", "别推送了", "不想收到推送", "不想收推送了", "不再订阅"}
)  # fmt: skip
SUBSCRIPTIONS_WORDS = frozenset(
    {"我的订阅", "查看订阅", "查看我的订阅", "订阅列表", "我订阅了什么", "我订阅了哪些", "我的关注"}
)  # fmt: skip
# A subscription word followed by a category (订阅 外贸外资, 退订外贸外资), longest word first; the core
# checks that the rest names a category (otherwise the message is a question: 订阅号怎么关注).
CATEGORY_WORDS: tuple[tuple[str, CommandName], ...] = (
    ("取消订阅", "unsubscribe"),
    ("订阅", "subscribe"),
    ("退订", "unsubscribe"),
)
WORD_COMMANDS: tuple[tuple[CommandName, frozenset[str]], ...] = (
    ("human", HUMAN_WORDS),
    ("status", STATUS_WORDS),
    ("cancel", CANCEL_WORDS),
    ("subscribe", SUBSCRIBE_WORDS),
    ("unsubscribe", UNSUBSCRIBE_WORDS),
    ("subscriptions", SUBSCRIPTIONS_WORDS),
)
# The typed command that does what a button does, for channels that hint commands (Telegram, terminal).
COMMAND_HINTS = (("escalate", "/human 转人工"), ("human", "/human 转人工"),
                 ("status", "/status 查看进度"), ("cancel", "/cancel 撤回"))  # fmt: skip
TICKET_ARG = re.compile(r"^#?([0-9]{1,12})\Z")
RATING_SCORES = ("good", "fair", "bad")  # 满意 / 一般 / 不满意 (bot/ratings.py)


class ActionError(ValueError):
    """A malformed or unknown action: the button is not one the core made (or it has been tampered with)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"未知操作（unknown action {action[:80]!r}）")
        self.action = action


@dataclass(frozen=True, slots=True)
class Action:
    """A parsed action. ``ids`` are the numbers it carries; ``arg`` its text (a category, an entry id)."""

    kind: ActionKind
    ids: tuple[int, ...] = ()
    arg: str = ""
    helpful: bool = False  # feedback only: up (True) or down

    @property
    def id(self) -> int | None:
        """The first number (question, message or ticket), or None."""
        return self.ids[0] if self.ids else None


# -- builders -------------------------------------------------------------------------------------------
def pick_action(question_id: int, index: int) -> str:
    """Choose suggestion ``index`` of stored question ``question_id``."""
    return f"pick:{question_id}:{index}"


def feedback_action(message_id: int, helpful: bool) -> str:
    """有用 / 没解决 on the stored answer ``message_id``."""
    return f"feedback:{'up' if helpful else 'down'}:{message_id}"


def escalate_action(question_id: int | None = None) -> str:
    """都不是，转人工 (for a stored question, or the last one)."""
    return "escalate" if question_id is None else f"escalate:{question_id}"


def human_action() -> str:
    """转人工: hand the conversation's latest question to staff."""
    return "human"


def status_action() -> str:
    """查看进度: the conversation's tickets and their state."""
    return "status"


def cancel_action(ticket_id: int | None = None) -> str:
    """Withdraw ticket ``ticket_id`` (or the newest open one)."""
    return "cancel" if ticket_id is None else f"cancel:{ticket_id}"


def category_action(name: str) -> str:
    """List the entries of a knowledge category."""
    return f"cat:{name}"


def entry_action(entry_id: str) -> str:
    """Show one entry's answer."""
    return f"entry:{entry_id}"


def subscribe_action(category: str = "") -> str:
    """Subscribe to a category's new entries (without one: choose among the categories)."""
    return f"subscribe:{category}" if category else "subscribe"


def unsubscribe_action(category: str = "") -> str:
    """End a category subscription (without one: choose among the conversation's subscriptions)."""
    return f"unsubscribe:{category}" if category else "unsubscribe"


def subscriptions_action() -> str:
    """The conversation's subscriptions (我的订阅)."""
    return "subscriptions"


def follow_action(entry_id: str) -> str:
    """Follow one entry for its revisions and expiry (关注此条)."""
    return f"follow:{entry_id}"


def unfollow_action(entry_id: str) -> str:
    """Stop following one entry."""
    return f"unfollow:{entry_id}"


def unsub_action(subscription_id: int) -> str:
    """End one subscription by its number (退订 under a push)."""
    return f"unsub:{subscription_id}"


def digest_action(on: bool) -> str:
    """Pushes once a day (``on``) or as they come."""
    return f"digest:{'on' if on else 'off'}"


def read_action(broadcast_id: int, index: int | None = None) -> str:
    """阅读全文 under a push (the ``index``-th entry of a bulk-import summary)."""
    return f"read:{broadcast_id}" if index is None else f"read:{broadcast_id}:{index}"


def rate_action(message_id: int, score: str) -> str:
    """满意 (``good``) / 一般 (``fair``) / 不满意 (``bad``) on staff reply ``message_id``."""
    return f"rate:{score}:{message_id}"


def related_action(message_id: int, index: int) -> str:
    """相关问题 ``index`` offered under the answer ``message_id`` (its stored payload holds the entry)."""
    return f"rel:{message_id}:{index}"


def fits_button(action: str) -> bool:
    """Whether ``action`` can be a button on every channel (Telegram allows 64 bytes)."""
    return 1 <= len(action.encode()) <= MAX_BUTTON_ACTION


# -- parsing --------------------------------------------------------------------------------------------
def is_id(value: int) -> bool:
    """Whether ``value`` can be a row's id (0 < value <= MAX_ID): anything else is nobody's."""
    return 0 < value <= MAX_ID


def is_number(text: str) -> bool:
    """Whether ``text`` is a number an action may carry: digits only, at most ``MAX_ID``."""
    return bool(NUMBER.fullmatch(text)) and int(text) <= MAX_ID


def parse_id(text: str) -> int:
    """An id from outside (a button's data, a path): ``ValueError`` unless it is digits for 1..MAX_ID."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and is_id(int(text))):
        raise ValueError(f"not an id: {text[:20]!r}")
    return int(text)


def parse_action(action: str) -> Action:
    """The action a button carries, or ``ActionError`` for anything the builders above do not make."""
    if not isinstance(action, str) or not 0 < len(action) <= MAX_ACTION:
        raise ActionError(str(action))
    kind, _, rest = action.partition(":")
    parts = rest.split(":") if rest else []
    nums = [int(p) for p in parts if is_number(p)]
    numeric = len(nums) == len(parts)
    match kind:
        case "pick" if numeric and len(nums) == 2:
            return Action("pick", (nums[0], nums[1]))
        case "feedback" if len(parts) == 2 and parts[0] in ("up", "down") and is_number(parts[1]):
            return Action("feedback", (int(parts[1]),), helpful=parts[0] == "up")
        case "escalate" | "cancel" if numeric and len(nums) <= 1:
            return Action(kind, tuple(nums))
        case "human" | "status" if not parts:
            return Action(kind)
        case "cat" | "entry" if rest.strip():
            return Action(kind, arg=rest)
        case "subscribe" | "unsubscribe":
            return Action(kind, arg=rest.strip())
        case "subscriptions" if not parts:
            return Action("subscriptions")
        case "follow" | "unfollow" if rest.strip():
            return Action(kind, arg=rest.strip())
        case "unsub" if numeric and len(nums) == 1:
            return Action("unsub", (nums[0],))
        case "digest" if rest in ("on", "off"):
            return Action("digest", arg=rest)
        case "read" if numeric and len(nums) in (1, 2):
            return Action("read", tuple(nums))
        case "rate" if len(parts) == 2 and parts[0] in RATING_SCORES and is_number(parts[1]):
            return Action("rate", (int(parts[1]),), arg=parts[0])
        case "rel" if numeric and len(nums) == 2:
            return Action("rel", (nums[0], nums[1]))
    raise ActionError(action)


def parse_command(text: str) -> tuple[CommandName, str] | None:
    """``/name[@bot] args`` -> ``(name, args)`` for a known command, else None (it is a question)."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, args = stripped.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    for known in COMMAND_NAMES:
        if name == known:
            return known, args.strip()
    return None


def command_in_words(text: str) -> str | None:
    """The command the whole message asks for in words (``WORD_COMMANDS``): human (转人工, 客服),
    status (查看进度, 我的工单), cancel (撤回工单), subscribe (怎么订阅政策更新), unsubscribe (退订) or
    subscriptions (我的订阅); or a short message said in other words of asking for a person, after
    one's question or to withdraw it (``SAID``: 能不能转人工, 有人回复了吗, 撤回我的工单); None for
    anything else."""
    forms = phrasings(text)
    for name, words in WORD_COMMANDS:
        if any(form in words for form in forms):
            return name
    if not forms or len(forms[0]) > SAID_LONGEST:
        return None
    for name, said in SAID:
        if any(said.fullmatch(f) for f in forms):
            return name
    return None


def category_in_words(text: str) -> tuple[CommandName, str] | None:
    """(subscribe or unsubscribe, the rest) for a message that starts with a ``CATEGORY_WORDS`` word
    followed by something (订阅 外贸外资 -> subscribe, 外贸外资); None otherwise. Whether the rest names a
    category is for the caller to check."""
    text = text.strip()
    for word, name in CATEGORY_WORDS:
        if text.startswith(word) and (rest := text[len(word) :].strip()):
            return name, rest
    return None


def command_hint(buttons: list[list[Button]], numbered: bool = False) -> str:
    """The typed commands that do what ``buttons`` do, in words (``发送 /status 查看进度，/cancel 撤回``);
    empty when none has a command. ``numbered``: the channel shows ``choices`` as numbers already, so
    those are not hinted again."""
    shown = choices(buttons) if numbered else []
    kinds = {b.action.partition(":")[0] for row in buttons for b in row if b not in shown}
    hints = list(dict.fromkeys(words for kind, words in COMMAND_HINTS if kind in kinds))
    return "发送 " + "，".join(hints) if hints else ""


def ticket_arg(args: str) -> int | None:
    """The ticket number of ``/cancel 12`` or ``/cancel #12``; None when absent or not a number."""
    first = args.split()[0] if args.split() else ""
    match = TICKET_ARG.match(first)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= MAX_ID else 0  # no ticket has it (0 is nobody's id either)


def choices(buttons: list[list[Button]]) -> list[Button]:
    """The buttons a text-only channel (terminal, WeChat) shows as numbered lines, in order, the
    ratings last (the questions offered keep the first numbers); the user answers with the number
    (``Conversations.choose``)."""
    offered = [b for row in buttons for b in row if b.action.startswith(CHOICE_KINDS)]
    rating = [b for b in offered if b.action.startswith(RATING_KINDS)]
    return [b for b in offered if b not in rating] + rating
