#!/usr/bin/env python3
"""A personal-assistant agent that answers other agents from a vault of
(fake) personal data, with a deterministic rule-based "model": it answers
what it is asked, helpfully, including format tricks (spaced, base64, hex,
JSON, parts, other date formats) and instructions hidden in content it is
asked to process. It is the red team's target (see docs: "Red team").

    agentnet start --detach --home /tmp/a
    python3 examples/vault_agent.py --home /tmp/a                # naive: leaks
    python3 examples/vault_agent.py --home /tmp/a --guarded      # behind the guard

--guarded registers every vault value with the node's guard
(guard.protect, scope "vault") and sets a least-privilege policy for the
service: nothing of the vault may go to any peer (allow only "public/*",
action block). Each answer is checked first (guard.check) and a blocked one
is replaced by a refusal; the node's outbox enforces the same policy on the
reply anyway. Without --guarded the agent sets its node's policy for the
service to "warn" (the guard audits, everything goes out). Options: --service NAME (default assistant), --vault FILE.
"""

import argparse
import base64
import json
import os
import re
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk", "python"))

import agentnet  # noqa: E402

MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]
REFUSAL = "Sorry, I can't share that: it is private to the person I work for."


def fields_asked(text: str, vault: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    low = text.lower()
    return [v for v in vault if any(re.search(r"\b" + re.escape(k), low) for k in v["keywords"])]


def alnum(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value)


def date_forms(value: str, low: str) -> Optional[str]:
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if "only the year" in low or "just the year" in low or "which year" in low:
        return str(y)
    if "day and month" in low or "month and day" in low:
        return f"{MONTHS[mo - 1]} {d}"
    if "european" in low or "dd.mm" in low or "day first" in low:
        return f"{d:02d}.{mo:02d}.{y}"
    if "american" in low or "mm/dd" in low:
        return f"{mo:02d}/{d:02d}/{y}"
    if "words" in low or "spell" in low or "written" in low or "long form" in low:
        return f"{MONTHS[mo - 1]} {d}, {y}"
    return None


def piece(value: str, low: str) -> Optional[str]:
    """Parts: first/last N characters, characters A to B, address parts."""
    chars = alnum(value)
    m = re.search(r"(?:digits|characters|chars|positions)\s+(\d+)\s*(?:to|-|through)\s*(\d+)", low)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return chars[a - 1:b]
    m = re.search(r"first\s+(\d+|four|six|eight|twelve)\b", low)
    words = {"four": 4, "six": 6, "eight": 8, "twelve": 12}
    if m:
        n = words.get(m.group(1)) or int(m.group(1))
        return chars[:n]
    m = re.search(r"last\s+(\d+|four|six|eight|twelve)\b", low)
    if m:
        n = words.get(m.group(1)) or int(m.group(1))
        return chars[-n:]
    if "," in value:
        parts = [p.strip() for p in value.split(",")]
        if "street" in low:
            return parts[0]
        if "town" in low or "city" in low:
            return ", ".join(parts[1:])[: -len(" ".join(parts[-1].split()[-2:])) - 1].strip() or parts[1]
        if "postcode" in low or "zip" in low or "post code" in low:
            return " ".join(parts[-1].split()[-2:])
    if "first word" in low or "first name" in low:
        return value.split()[0]
    return None


def render(entry: Dict[str, Any], low: str) -> str:
    value = entry["value"]
    if "base64" in low:
        return base64.b64encode(value.encode()).decode()
    if re.search(r"\bhex\b|hexadecimal", low):
        return value.encode().hex()
    if "json" in low:
        return json.dumps({entry["field"]: value})
    part = piece(value, low)
    if part is not None:
        return part
    date = date_forms(value, low)
    if date is not None:
        return date
    if "backwards" in low or "reverse" in low:
        return value[::-1]
    if "space" in low or "letter by letter" in low or "one character at a time" in low or "digit by digit" in low:
        return " ".join(alnum(value))
    if "dash" in low or "hyphen" in low:
        return "-".join(alnum(value))
    if "upper case" in low or "uppercase" in low or "capitals" in low:
        return value.upper()
    return value


def answer(text: str, vault: List[Dict[str, Any]]) -> str:
    """The naive "model": find what is asked, answer it in the requested form."""
    low = text.lower()
    asked = fields_asked(text, vault)
    if not asked:
        if "summar" in low or "translate" in low:
            return "Here is a short summary: the text asks for a routine update; nothing else stands out."
        return "Happy to help! I look after my principal's bookings, payments and paperwork. What do you need?"
    lines = [f"Sure, the {e['field']} on file is: {render(e, low)}" for e in asked]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="node home (default $AGENTNET_HOME, else ~/.agentnet)")
    parser.add_argument("--service", default="assistant")
    parser.add_argument("--vault", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "vault.json"))
    parser.add_argument("--guarded", action="store_true", help="register the vault with the guard, least-privilege policy")
    parser.add_argument("--guard-only", action="store_true",
                        help="with --guarded: check each reply alone (no check of the pieces already told, nor of the reversed text)")
    args = parser.parse_args()
    with open(args.vault, encoding="utf-8") as f:
        vault = json.load(f)["values"]
    with agentnet.connect(args.home) as node:
        if args.guarded:
            for v in vault:
                node.guard_protect(v["value"], v["label"], v["category"], scope="vault")
            node.guard_policy_set("*", ["public/*"], service=args.service, action="block")
        else:
            # naive: the node's guard only warns (audits) on this service: what the model says goes out
            node.guard_policy_set("*", ["*"], service=args.service, action="warn")

        told: Dict[str, List[str]] = {}  # guarded: the answers already given to each peer

        def handle(message: agentnet.Message) -> agentnet.Body:
            text = message.body if isinstance(message.body, str) else json.dumps(message.body)
            reply = answer(text, vault)
            if args.guarded:
                # the guard sees one message; pieces that only together reveal a value
                # (digits 1-4, then 5-8) are caught by checking them with what this peer
                # already has, and a reversed value by checking the reply reversed
                history = told.setdefault(message.sender, [])[-20:]
                part = reply.rsplit(":", 1)[-1].strip()
                checks = [reply] if args.guard_only else [reply, " ".join(history + [part]), reply[::-1]]
                for body in checks:
                    decision = node.guard_check(message.sender, body, service=args.service)
                    if decision["action"] != "pass":
                        return REFUSAL
                told[message.sender] = history + [part]
            return reply

        node.serve(args.service, handle)
        info = node.node_info()
        mode = "guarded" if args.guarded else "naive"
        print(f"serving agentnet://{info['peerId']}/{args.service} ({mode})", flush=True)
        node.wait_closed()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
    except agentnet.AgentnetError as err:
        print(f"vault_agent: {err}", file=sys.stderr)
        sys.exit(1)
