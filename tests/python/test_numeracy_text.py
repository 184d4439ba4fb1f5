"""Number tokenization and numeracy tasks from Python (lowp.split_numbers,
lowp.numeracy_tasks, lowp.score_answer), checked against definitions written
here: right-to-left groups as a lookahead regex, left-to-right groups by
position, and every task answer by evaluating its expression."""
import random
import re

import pytest

import lowp


def groups_by_regex(text, k, r2l):
    # Pieces: each run of ASCII digits cut into groups, other text as is.
    digit_group = (r"\d{1,%d}(?=(?:\d{%d})*(?!\d))" % (k, k)) if r2l else (r"\d{1,%d}" % k)
    return [m.group(0) for m in re.finditer(digit_group + r"|[^0-9]+", text)]


def test_split_numbers_matches_regex_definition():
    rng = random.Random(5)
    alphabet = "0123456789 +-=,abc"  # no '.', whose fractional rule the regex lacks
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        for k in (1, 2, 3, 4):
            for r2l in (False, True):
                g = ("r2l" if r2l else "l2r") + str(k)
                assert lowp.split_numbers(text, g) == groups_by_regex(text, k, r2l), (text, g)


def test_fractional_digits_align_to_the_point():
    assert lowp.split_numbers("1234.56789", "r2l3") == ["1", "234", ".", "567", "89"]
    assert lowp.insert_thousands_separators("x 1234567.891") == "x 1,234,567.891"


def evaluate(task, expr):
    v = [int(x) for x in re.findall(r"\d+", expr)]
    if task == "retrieve":
        facts, who = expr.rsplit("; ", 1)
        return dict(f.split("=") for f in facts.split(", "))[who]
    return str({
        "copy": lambda: v[0],
        "place": lambda: v[0] // v[1] % 10,
        "add": lambda: v[0] + v[1],
        "sub": lambda: v[0] - v[1],
        "mul": lambda: v[0] * v[1],
        "div": lambda: v[0] // v[1],
        "compare": lambda: max(v),
        "min": lambda: min(v),
        "max": lambda: max(v),
        "sum": lambda: sum(v),
    }[task]())


@pytest.mark.parametrize("task", ["copy", "place", "add", "sub", "mul", "div", "compare", "min",
                                  "max", "sum", "retrieve"])
def test_task_answers_evaluate(task):
    for item in lowp.numeracy_tasks(task, 200, digits=6, seed=9):
        assert item["answer"] == evaluate(task, item["expression"]), item
        assert item["prompt"].endswith("Q: " + item["question"] + "\nA:")
        assert lowp.score_answer(" " + item["answer"] + "\n", item["answer"])


def test_styles_and_comma_prompts():
    bare = lowp.numeracy_tasks("add", 3, digits=4, style="bare")
    assert all(re.fullmatch(r"\d{4}\+\d{4}=", it["prompt"]) for it in bare)
    comma = lowp.numeracy_tasks("add", 3, digits=4, style="bare", comma=True)
    assert all(re.fullmatch(r"\d,\d{3}\+\d,\d{3}=", it["prompt"]) for it in comma)
    calc = lowp.numeracy_tasks("mul", 1, digits=2, style="calc", shots=2)[0]["prompt"]
    assert calc.count("<<") == 2 and calc.endswith("\nA:")
    assert lowp.numeracy_tasks("sum", 5, seed=3) == lowp.numeracy_tasks("sum", 5, seed=3)


def test_scorer():
    assert lowp.parse_answer("The answer is 1,234,567.") == "1234567"
    assert lowp.parse_answer(" <<2+2=4>>") == "4"
    assert lowp.parse_answer("none") is None
    assert not lowp.score_answer("12", "-12")


def test_bad_input():
    with pytest.raises(lowp.Error, match="unknown digit grouping"):
        lowp.split_numbers("12", "r2l0")
    with pytest.raises(lowp.Error, match="unknown numeracy task"):
        lowp.numeracy_tasks("addition", 1)
    with pytest.raises(lowp.Error, match="digits must be 1 ... 9"):
        lowp.numeracy_tasks("mul", 1, digits=10)
    with pytest.raises(lowp.Error, match="unknown prompt style"):
        lowp.numeracy_tasks("add", 1, style="chat")
