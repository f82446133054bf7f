"""Technical reading-comprehension examples written from installed packages' own documentation.

No technical QA data exists offline, and a reader trained on Wikipedia picks the wrong kind of span in technical
text: a sentence where the user asked for an option, a name where they asked for a command. Documentation states
its own questions in its structure, and this module turns that structure into templated questions whose answer
is a verbatim span of the documentation:

- a parameter list says which argument gives what, and the signature what it defaults to;
- a docstring's first sentence says which function does what (and what that function does);
- a "Raises" entry says which exception comes when;
- a command-line option's help text says which flag does what (argparse, click and pytest option calls);
- a README line ending in ":" above a one-line code block says how to do something.

Sources are parsed, never imported: every `.py` file of every installed distribution (with `ast`) and every
distribution's long description. Packages the technical benchmark asks about (`bench/techdocs/sources`) are left
out, so that set stays held out. The output is SQuAD JSON, one article per package (so the reader's training
draws hard negative passages from the same package), optionally mixed with SQuAD questions so that the reader
keeps what it knows about prose.

Trained this way (`scripts/train_reader_tech.sh`), the reader lost on prose and on the technical questions
themselves (docs/answers.md). Templated questions repeat their page's words, so they teach matching words rather
than reading; a reader for technical text needs questions phrased the way users ask. Not shipped; kept so that the
result can be reproduced and built on.

    python -m spanqa.plugin.lab.tech_synth --out runs/techmix/train.json \
        --squad ../shared/data/squad-v1.1/train-v1.1.json --squad-questions 13000
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["Page", "SynthQuestion", "questions_for_page", "pages_of_distribution", "build_dataset", "squad_sample"]

# Verbs that open documentation sentences ("Return the…", "Creates a…"): enough to tell a verb from a noun.
_VERB_WORDS = """accept add allow append apply assert attach build calculate call cancel check clean clear close
collect combine compare compile compute configure connect construct convert copy count create decode define delete
describe detect determine disable display download draw dump emit enable encode ensure evaluate execute exit expand
export extract fetch fill filter find finish flush format generate get give handle hash ignore import include
initialize insert inspect install invoke iterate join keep kill limit list listen load lock log look make map mark
match measure merge modify move normalize open override parse pass patch perform plot pop prepare print process
produce provide push put raise read receive record reduce register reload remove rename render repeat replace report
request reset resolve restore restrict retry return reverse run save scan schedule search select send serialize
set show shut skip sleep sort specify split start stop store strip submit suppress switch take tell test toggle
trace transform translate truncate try turn unregister update upload use validate verify wait walk warn wrap write
yield"""
VERBS = frozenset(_VERB_WORDS.split())
OPTION_CALLS = {"add_argument", "addoption", "option", "add_option"}  # argparse, pytest, click, optparse
MAX_ANSWER_CHARS = 120


@dataclass(frozen=True)
class Page:
    """One documented object rendered the way API reference pages show it: signature line, then docstring."""

    package: str
    name: str  # the function, class or option name as the page shows it
    kind: str  # "function", "method", "class", "option", "readme"
    text: str
    defaults: tuple[tuple[str, str], ...] = ()  # (parameter, default literal) from the signature


@dataclass(frozen=True)
class SynthQuestion:
    question: str
    answer: str
    start: int  # offset of `answer` in the page text


def third_person(verb: str) -> str:
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    return verb + "s"


def base_verb(word: str) -> str | None:
    """The base form of a documentation sentence's opening verb ("Returns" → "return"), or None."""
    w = word.lower()
    for candidate in (w, w[:-3] + "y" if w.endswith("ies") else "", w[:-2] if w.endswith("es") else "",
                      w[:-1] if w.endswith("s") else ""):
        if candidate in VERBS:
            return candidate
    return None


def first_sentence(text: str) -> str:
    """The docstring's first sentence on one line, without its full stop; '' when it is not a plain sentence."""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=[a-z0-9)`'\"])\.(?:\s|$)", paragraph)[0].rstrip(".")
    if not 12 <= len(sentence) <= 160 or re.search(r"[>{}\[\]=|]|::|^\W", sentence):
        return ""
    return sentence


def _lower_first(text: str) -> str:
    """Lower-case a sentence's first letter, unless the first word is an acronym or identifier (`HTTP`, `URLs`)."""
    first = text.split(" ", 1)[0]
    return text if sum(c.isupper() for c in first) > 1 or "_" in first else text[:1].lower() + text[1:]


def _predicate(description: str) -> tuple[str, str] | None:
    """A description as ('verb', rest) when it opens with a verb, ('np', phrase) when it is a noun phrase."""
    words = description.split()
    if not words:
        return None
    verb = base_verb(words[0])
    if verb:
        return "verb", " ".join([third_person(verb), *words[1:]])
    if words[0].lower() in {"the", "a", "an", "number", "maximum", "minimum", "name", "path", "list", "size",
                            "amount", "time", "timeout", "seconds", "optional", "default", "how", "whether"}:
        return "np", _lower_first(description)
    return None


def _parameter_questions(page: Page, rng: random.Random) -> Iterator[SynthQuestion]:
    """Parameters of numpydoc ("name : type" + indented text), Google ("name (type): text") and Sphinx
    (":param name: text") docstrings."""
    patterns = [r"^(?P<indent>[ \t]*)(?P<name>\*{0,2}\w+)[ \t]*:[ \t]*[^\n]*\n(?P=indent)[ \t]+(?P<desc>[^\n]+)",
                r"^[ \t]+(?P<name>\*{0,2}\w+)[ \t]*\([^)\n]*\)[ \t]*:[ \t]+(?P<desc>[^\n]+)",
                r":param(?:[ \t]+[\w\[\], .]+?)?[ \t]+(?P<name>\w+):[ \t]*(?P<desc>[^\n]+)"]
    seen = set()
    for pattern in patterns:
        for m in re.finditer(pattern, page.text, re.M):
            name, desc = m.group("name").lstrip("*"), first_sentence(m.group("desc"))
            if name in seen or name in {"self", "cls", "Returns", "Raises", "Parameters", "Examples"} or not desc:
                continue
            seen.add(name)
            start = m.start("name") + m.group("name").index(name)
            shape = _predicate(desc)
            if shape:
                owner = f" of {page.name}" if rng.random() < 0.5 else ""
                if shape[0] == "verb":
                    q = rng.choice([f"Which argument{owner} {shape[1]}?", f"Which parameter {shape[1]}?",
                                    f"What keyword{owner} {shape[1]}?"])
                else:
                    q = rng.choice([f"Which parameter{owner} gives {shape[1]}?",
                                    f"What argument do I pass for {shape[1]}?",
                                    f"Which keyword sets {shape[1]}{' in ' + page.name if owner else ''}?"])
                yield SynthQuestion(q, name, start)
            default = dict(page.defaults).get(name)
            if default is not None and len(default) <= 40:
                at = page.text.find(f"{name}={default}")
                if at >= 0:
                    subject = shape[1] if shape and shape[0] == "np" and rng.random() < 0.5 else name
                    q = rng.choice([f"What is the default {subject}?", f"What does {name} default to?",
                                    f"If I don't pass {name} to {page.name}, what value is used?"])
                    yield SynthQuestion(q, default, at + len(name) + 1)


def _summary_questions(page: Page, rng: random.Random) -> Iterator[SynthQuestion]:
    body = page.text.split("\n", 1)[1] if "\n" in page.text else ""
    sentence = first_sentence(body)
    words = sentence.split()
    verb = base_verb(words[0]) if words else None
    if not verb or page.kind not in {"function", "method", "class"}:
        return
    rest = _lower_first(" ".join(words[1:]))
    q = rng.choice([f"Which {page.kind} {third_person(verb)} {rest}?", f"What do I call to {verb} {rest}?",
                    f"How do I {verb} {rest}?", f"Is there a {page.kind} that {third_person(verb)} {rest}?"])
    yield SynthQuestion(q, page.name, 0)
    at = page.text.find(words[0], len(page.text.split("\n", 1)[0]))
    if at >= 0 and page.text[at:].startswith(" ".join(words[:3])):
        # The sentence as the page writes it (whitespace may differ when it wraps): recover the exact span.
        match = re.compile(r"\s+".join(map(re.escape, words))).match(page.text, at)
        if match and len(match.group(0)) <= MAX_ANSWER_CHARS:
            q = rng.choice([f"What does {page.name} do?", f"What is {page.name} for?",
                            f"What happens when I call {page.name}?"])
            yield SynthQuestion(q, match.group(0), at)


def _raises_questions(page: Page, rng: random.Random) -> Iterator[SynthQuestion]:
    patterns = [r"^Raises\n[ \t]*-+\n(?P<name>\w+(?:\.\w+)*)\n[ \t]+(?P<desc>[^\n]+)",
                r"^Raises:\n[ \t]+(?P<name>\w+(?:\.\w+)*):[ \t]*(?P<desc>[^\n]+)",
                r":raises?[ \t]+(?P<name>\w+(?:\.\w+)*):[ \t]*(?P<desc>[^\n]+)"]
    for pattern in patterns:
        for m in re.finditer(pattern, page.text, re.M):
            name, desc = m.group("name"), first_sentence(m.group("desc"))
            if not desc or not re.match(r"(?i)(if|when|whenever|in case|on)\b", desc) or not name[0].isupper():
                continue
            cond = _lower_first(desc)
            q = rng.choice([f"Which exception does {page.name} raise {cond}?",
                            f"What error do I get {cond}?", f"What is raised {cond}?"])
            yield SynthQuestion(q, name, m.start("name"))


def _option_questions(page: Page, rng: random.Random) -> Iterator[SynthQuestion]:
    """An option page is "usage line" + "  --flag METAVAR  help" lines (see `_option_pages`)."""
    for m in re.finditer(r"^  (?P<flag>--?[\w-]+)(?:, -[\w-]+)?(?: [A-Z_]+)?[ \t]{2,}(?P<help>[^\n]+)",
                         page.text, re.M):
        desc = first_sentence(m.group("help"))
        words = desc.split()
        if not words:
            continue
        verb = base_verb(words[0])
        rest = _lower_first(" ".join(words[1:]))
        if verb:
            q = rng.choice([f"Which command-line option do I use to {verb} {rest}?",
                            f"How do I {verb} {rest} from the command line?",
                            f"What flag {third_person(verb)} {rest}?"])
        else:
            q = rng.choice([f"Which option sets {_lower_first(desc)}?", f"What flag controls {_lower_first(desc)}?"])
        yield SynthQuestion(q, m.group("flag"), m.start("flag"))


def _readme_questions(page: Page, rng: random.Random) -> Iterator[SynthQuestion]:
    """A prose line ending in ':' (or '::') above a one-line code block: "To install it, run:" → the command."""
    block = r"\n\n(?:```\w*\n|\.\. code(?:-block)?::[^\n]*\n\n)?(?P<indent>[ \t]*)(?:\$ |>>> )?(?P<code>[^\n]+)\n"
    for m in re.finditer(r"^(?P<intro>[A-Z][^\n:]{10,140}?):?:" + block + r"(?:```|\n|(?P=indent)\S)",
                         page.text, re.M):
        intro, code = " ".join(m.group("intro").split()), m.group("code").strip()
        if (len(code) > MAX_ANSWER_CHARS or len(code) < 4 or code.endswith(":") or ", you" in intro
                or code.startswith(("#", "import ", "from ", "```")) or re.match(r"\d+\. ", code)):
            continue
        task = re.match(r"(?i)(?:to|you can(?: also)?|you may|in order to)\s+(.+?)(?:,?\s+(?:run|use|type|do|call|"
                        r"add|write|execute|simply|just)\b.*| with| using| by| like (?:this|so)| as follows)?$", intro)
        if not task:
            continue
        phrase = _lower_first(task.group(1))
        q = rng.choice([f"How do I {phrase}?", f"How can I {phrase}?", f"What do I run to {phrase}?",
                        f"What's the command to {phrase}?"])
        yield SynthQuestion(q, code, m.start("code"))


QUESTION_MAKERS = (_parameter_questions, _summary_questions, _raises_questions, _option_questions,
                   _readme_questions)


def questions_for_page(page: Page, rng: random.Random) -> list[SynthQuestion]:
    """Every templated question the page supports whose answer is a verbatim, reasonably short span."""
    out = []
    for maker in QUESTION_MAKERS:
        for q in maker(page, rng):
            if 0 < len(q.answer) <= MAX_ANSWER_CHARS and page.text[q.start : q.start + len(q.answer)] == q.answer:
                out.append(q)
    return out


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, tuple[tuple[str, str], ...]]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[tuple[str, str]] = []
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True):
        defaults.append((arg.arg, ast.unparse(default)))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            defaults.append((arg.arg, ast.unparse(default)))
    text = ast.unparse(args)
    return text, tuple(d for d in defaults if re.fullmatch(r"[\w.'\" -]+", d[1]))


def _parsed(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return None


def _api_pages(package: str, tree: ast.Module) -> Iterator[Page]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(doc) < 40:
            continue
        doc = textwrap.dedent(doc)[:1500]
        if isinstance(node, ast.ClassDef):
            yield Page(package, node.name, "class", f"class {node.name}\n\n{doc}")
            continue
        signature, defaults = _signature(node)
        kind = "method" if signature.startswith(("self", "cls")) else "function"
        signature = re.sub(r"^(self|cls)(, )?", "", signature)
        yield Page(package, node.name, kind, f"{node.name}({signature})\n\n{doc}", defaults)


def _option_pages(package: str, module: str, tree: ast.Module) -> Iterator[Page]:
    """Command-line options declared in a module, rendered as the `--help` text a user reads."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                 and a.value.startswith("-")]
        help_text = next((k.value.value for k in node.keywords if k.arg == "help"
                          and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), "")
        if name in OPTION_CALLS and flags and help_text:
            long_flags = sorted(flags, key=len, reverse=True)
            lines.append(f"  {long_flags[0]}{', ' + long_flags[-1] if len(long_flags) > 1 else ''}"
                         f"{' ' * max(2, 28 - len(long_flags[0]))}{' '.join(help_text.split())}")
    for i in range(0, len(lines), 12):  # a help screen's worth of options per page
        listing = "\n".join(lines[i : i + 12])
        yield Page(package, module, "option", f"usage: {module} [options]\n\noptions:\n{listing}")


def pages_of_distribution(dist: metadata.Distribution) -> Iterator[Page]:
    package = dist.metadata["Name"] or "?"
    description = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
    if len(description) > 200:
        for part in re.split(r"\n(?=#+ |\S[^\n]*\n[=\-~^]{3,}\n)", description):  # README sections
            if len(part) > 80:
                yield Page(package, package, "readme", part[:4000])
    for file in dist.files or []:
        if file.suffix == ".py" and not re.search(r"(^|/)(tests?|testing|_vendor|vendored)(/|$)", str(file)):
            path = Path(str(file.locate()))
            tree = _parsed(path)
            if tree is not None:
                yield from _api_pages(package, tree)
                yield from _option_pages(package, path.stem, tree)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _article(package: str, pages: list[Page], rng: random.Random, per_package: int) -> dict | None:
    """Up to two questions per page; every option and README page (they are few and closest to what users ask
    about), then API pages until `per_package` questions."""
    paragraphs, count = [], 0
    rng.shuffle(pages)
    pages.sort(key=lambda page: page.kind not in {"option", "readme"})
    for page in pages:
        qs = questions_for_page(page, rng)
        if not qs or (count >= per_package and page.kind not in {"option", "readme"}):
            continue
        chosen = rng.sample(qs, min(len(qs), 2))
        paragraphs.append({"context": page.text, "qas": [
            {"id": f"synth-{_normalise(package)}-{count + i}", "question": q.question,
             "answers": [{"text": q.answer, "answer_start": q.start}]} for i, q in enumerate(chosen)]})
        count += len(chosen)
    return {"title": f"synth:{package}", "paragraphs": paragraphs} if paragraphs else None


def build_dataset(exclude: set[str], per_package: int = 150, seed: int = 13) -> list[dict]:
    """One SQuAD article per installed distribution (other than `exclude`), at most `per_package` questions."""
    rng = random.Random(seed)
    articles = []
    for dist in sorted(metadata.distributions(), key=lambda d: _normalise(d.metadata["Name"] or "")):
        name = _normalise(dist.metadata["Name"] or "")
        if not name or name in exclude:
            continue
        article = _article(name, list(pages_of_distribution(dist)), rng, per_package)
        if article:
            articles.append(article)
    return articles


def squad_sample(path: Path, questions: int, seed: int) -> list[dict]:
    """Whole SQuAD articles, in random order, until about `questions` questions (negatives stay in-article)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    random.Random(seed).shuffle(data)
    out, total = [], 0
    for article in data:
        if total >= questions:
            break
        out.append(article)
        total += sum(len(p["qas"]) for p in article["paragraphs"])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exclude-sources", type=Path, default=Path("bench/techdocs/sources"),
                        help="folder of the technical benchmark's documents: those packages are left out")
    parser.add_argument("--per-package", type=int, default=150)
    parser.add_argument("--squad", type=Path, help="SQuAD JSON to mix in (whole articles)")
    parser.add_argument("--squad-questions", type=int, default=0, help="how many SQuAD questions to mix in")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    # The benchmark's packages stay held out; spanqa's own documents are the default collection its tests ask about.
    exclude = {_normalise(p.stem) for p in args.exclude_sources.glob("*.txt")} | {"spanqa"}
    articles = build_dataset(exclude, args.per_package, args.seed)
    synthetic = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    if args.squad and args.squad_questions:
        articles += squad_sample(args.squad, args.squad_questions, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"version": "spanqa-techsynth-1", "data": articles}), encoding="utf-8")
    total = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    print(f"{synthetic} technical questions from {sum(a['title'].startswith('synth:') for a in articles)} packages "
          f"(excluded: {', '.join(sorted(exclude))}); {total - synthetic} SQuAD questions; wrote {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
