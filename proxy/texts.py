# ruff: noqa: RUF001  # Chinese text uses full-width punctuation, on purpose
"""The words of the proxy's own HTML pages (the no-JavaScript path), in en, de and zh.

A form posts with `?lang=<en|de|zh>` (the page's language, contract C3);
anything else gets English. Two tables, each language -> key -> text:

- `PAGES`: a page's title (`title.<status>`), its line (`message.<status>`),
  the 202 page, the stamp refusal (`title.stamp`, `message.stamp`), the back
  link and the label of an error about the whole submission (`form`);
- `ERRORS`: one phrase per 422 code (leadline.schemas.CODES), shown after the
  field's label. Placeholders come from the field's schema: `{limit}` (its
  minLength, maxLength, minimum or maximum), `{values}` (its enum). A key
  `<code>:box` words a checkbox's problem where the plain phrase reads oddly.

The page's own texts (site/pelican/plugins/leadform/texts.py) are kept in the
same shape, so a test can hold the two to the same codes. The English field
phrases yield to the schema's own English words (`x-pattern-message`, …),
which the 422's `message` carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGS = ("en", "de", "zh")
FALLBACK = "en"
HTML_LANG = {"en": "en", "de": "de", "zh": "zh-Hans"}

PAGES: dict[str, dict[str, str]] = {
    "en": {
        "title.202": "Thank you",
        "message.202": "We have your message and will get back to you soon.",
        "title.400": "We could not read your submission",
        "message.400": "Your browser sent something we could not read. Please go back and send the form "
                       "again.",
        "title.403": "This form cannot be sent from here",
        "message.403": "This form may only be sent from its own website.",
        "title.404": "There is no such form",
        "message.404": "The form you sent does not exist (any more).",
        "title.408": "Your submission took too long",
        "message.408": "Your submission did not arrive in time. Please go back and send it again.",
        "title.413": "Your submission is too long",
        "message.413": "Please shorten your message and send the form again.",
        "title.415": "We could not read your submission",
        "message.415": "Your browser sent the form in a way we cannot read.",
        "title.422": "Please check the form",
        "message.422": "Some fields need another look:",
        "title.429": "Too many submissions",
        "message.429": "You sent several forms in a short time. Please wait a minute and try again.",
        "title.503": "We could not take your submission just now",
        "message.503": "Nothing was lost on your side: please go back and send it again in a moment.",
        "title.stamp": "Please send the form from its page",
        "message.stamp": "This form needs the check its page makes in your browser (with JavaScript on). "
                         "Please go back and send it again.",
        "title.error": "Something went wrong",
        "message.error": "Please go back and send the form again.",
        "back": "Back to the form",
        "form": "Form",
    },
    "de": {
        "title.202": "Vielen Dank",
        "message.202": "Ihre Nachricht ist bei uns angekommen. Wir melden uns in Kürze bei Ihnen.",
        "title.400": "Wir konnten Ihre Angaben nicht lesen",
        "message.400": "Ihr Browser hat etwas gesendet, das wir nicht lesen konnten. Bitte gehen Sie zurück "
                       "und senden Sie das Formular noch einmal.",
        "title.403": "Dieses Formular kann von hier nicht gesendet werden",
        "message.403": "Dieses Formular kann nur von seiner eigenen Website aus gesendet werden.",
        "title.404": "Dieses Formular gibt es nicht",
        "message.404": "Das gesendete Formular gibt es nicht (mehr).",
        "title.408": "Das Senden hat zu lange gedauert",
        "message.408": "Ihre Angaben sind nicht rechtzeitig angekommen. Bitte gehen Sie zurück und senden "
                       "Sie sie noch einmal.",
        "title.413": "Ihre Angaben sind zu lang",
        "message.413": "Bitte kürzen Sie Ihre Nachricht und senden Sie das Formular noch einmal.",
        "title.415": "Wir konnten Ihre Angaben nicht lesen",
        "message.415": "Ihr Browser hat das Formular in einer Form gesendet, die wir nicht lesen können.",
        "title.422": "Bitte prüfen Sie das Formular",
        "message.422": "Einige Felder brauchen noch einmal Ihre Aufmerksamkeit:",
        "title.429": "Zu viele Anfragen",
        "message.429": "Sie haben in kurzer Zeit mehrere Formulare gesendet. Bitte warten Sie eine Minute "
                       "und versuchen Sie es dann noch einmal.",
        "title.503": "Wir konnten Ihre Anfrage gerade nicht annehmen",
        "message.503": "Auf Ihrer Seite ist nichts verloren: Bitte gehen Sie zurück und senden Sie sie "
                       "gleich noch einmal.",
        "title.stamp": "Bitte senden Sie das Formular von seiner Seite aus",
        "message.stamp": "Dieses Formular braucht die Prüfung, die seine Seite in Ihrem Browser vornimmt "
                         "(mit eingeschaltetem JavaScript). Bitte gehen Sie zurück und senden Sie es noch "
                         "einmal.",
        "title.error": "Etwas ist schiefgegangen",
        "message.error": "Bitte gehen Sie zurück und senden Sie das Formular noch einmal.",
        "back": "Zurück zum Formular",
        "form": "Formular",
    },
    "zh": {
        "title.202": "谢谢",
        "message.202": "我们已收到您的留言，会尽快与您联系。",
        "title.400": "我们无法读取您提交的内容",
        "message.400": "您的浏览器发送了我们无法读取的内容。请返回并重新提交表单。",
        "title.403": "无法从此处提交该表单",
        "message.403": "该表单只能从其所属网站提交。",
        "title.404": "该表单不存在",
        "message.404": "您提交的表单不存在（或已不再使用）。",
        "title.408": "提交超时",
        "message.408": "您提交的内容未能及时送达。请返回并重新提交。",
        "title.413": "您提交的内容过长",
        "message.413": "请缩短您的留言后重新提交表单。",
        "title.415": "我们无法读取您提交的内容",
        "message.415": "您的浏览器以我们无法读取的方式发送了表单。",
        "title.422": "请检查表单",
        "message.422": "以下内容需要修改：",
        "title.429": "提交过于频繁",
        "message.429": "您在短时间内提交了多次表单。请稍等一分钟后再试。",
        "title.503": "暂时无法接收您提交的内容",
        "message.503": "您这边没有任何内容丢失：请返回并稍后重新提交。",
        "title.stamp": "请从表单所在页面提交",
        "message.stamp": "该表单需要其页面在您的浏览器中完成一项验证（需启用 JavaScript）。"
                         "请返回并重新提交。",
        "title.error": "出现了问题",
        "message.error": "请返回并重新提交表单。",
        "back": "返回表单",
        "form": "表单",
    },
}

ERRORS: dict[str, dict[str, str]] = {
    "en": {
        "required": "is required",
        "required:box": "must be ticked",
        "type": "has the wrong kind of value",
        "format": "is not in the expected format",
        "pattern": "is not in the expected format",
        "minLength": "must be at least {limit} characters",
        "maxLength": "must be at most {limit} characters",
        "minimum": "must be at least {limit}",
        "maximum": "must be at most {limit}",
        "enum": "must be one of {values}",
        "const": "does not have the value this form needs",
        "const:box": "must be ticked",
        "additional": "is not a field of this form",
        "stamp": "the check the page makes in your browser was missing or had expired",
        "invalid": "is not valid",
    },
    "de": {
        "required": "Bitte füllen Sie dieses Feld aus.",
        "required:box": "Bitte setzen Sie hier ein Häkchen.",
        "type": "Dieser Wert hat die falsche Art.",
        "format": "Das Format stimmt nicht.",
        "pattern": "Das Format stimmt nicht.",
        "minLength": "Bitte geben Sie mindestens {limit} Zeichen ein.",
        "maxLength": "Bitte höchstens {limit} Zeichen.",
        "minimum": "Der Wert muss mindestens {limit} betragen.",
        "maximum": "Der Wert darf höchstens {limit} betragen.",
        "enum": "Bitte wählen Sie einen dieser Werte: {values}.",
        "const": "Dieser Wert passt nicht zu diesem Formular.",
        "const:box": "Bitte setzen Sie hier ein Häkchen.",
        "additional": "Dieses Feld gibt es in diesem Formular nicht.",
        "stamp": "Die Prüfung, die die Seite in Ihrem Browser vornimmt, fehlte oder war abgelaufen.",
        "invalid": "Diese Angabe ist ungültig.",
    },
    "zh": {
        "required": "此项为必填项。",
        "required:box": "请勾选此项。",
        "type": "此项的值类型不正确。",
        "format": "格式不正确。",
        "pattern": "格式不正确。",
        "minLength": "请至少输入 {limit} 个字符。",
        "maxLength": "最多 {limit} 个字符。",
        "minimum": "数值不能小于 {limit}。",
        "maximum": "数值不能大于 {limit}。",
        "enum": "请从以下选项中选择：{values}。",
        "const": "此项的值不符合表单要求。",
        "const:box": "请勾选此项。",
        "additional": "此表单没有这一项。",
        "stamp": "页面在您的浏览器中进行的验证缺失或已过期。",
        "invalid": "此项填写有误。",
    },
}

# The schema keyword a code's `{limit}` comes from.
_LIMITS = {"minLength": "minLength", "maxLength": "maxLength", "minimum": "minimum", "maximum": "maximum"}


def lang_of(query_value: str | None) -> str:
    """The page's language from the `lang` query parameter: en, de or zh; anything else en."""
    if query_value is not None:
        value = query_value.strip().lower()
        if value in PAGES:
            return value
    return FALLBACK


def page_text(lang: str, key: str) -> str:
    words = PAGES.get(lang, PAGES[FALLBACK])
    return words.get(key) or PAGES[FALLBACK].get(key) or words["message.error"]


def field_label(lang: str, name: str, prop: Mapping[str, Any]) -> str:
    """What the form called the field: its title in this language (`x-i18n`), its title, its name."""
    i18n = prop.get("x-i18n")
    if isinstance(i18n, Mapping):
        own = i18n.get(lang)
        if isinstance(own, Mapping) and isinstance(own.get("title"), str) and own["title"].strip():
            return str(own["title"])
    title = prop.get("title")
    return title if isinstance(title, str) and title.strip() else name


# The schema's own words for a rule, which an editor may give per language (x-i18n).
_EDITORS_WORDS = {"pattern": "x-pattern-message", "format": "x-pattern-message", "const": "x-const-message"}


def _editors_words(lang: str, code: str, prop: Mapping[str, Any]) -> str | None:
    key = _EDITORS_WORDS.get(code)
    i18n = prop.get("x-i18n")
    own = i18n.get(lang) if key and isinstance(i18n, Mapping) else None
    words = own.get(key) if isinstance(own, Mapping) else None
    return words if isinstance(words, str) and words.strip() else None


def field_phrase(lang: str, code: str, prop: Mapping[str, Any]) -> str:
    """A field's problem by its code, worded in `lang`: the editor's words for
    that rule in `lang` where the schema has them, else ours with its limits filled in."""
    own = _editors_words(lang, code, prop)
    if own is not None:
        return own
    words = ERRORS.get(lang, ERRORS[FALLBACK])
    box = prop.get("type") == "boolean"
    template = (words.get(f"{code}:box") if box else None) or words.get(code) or words["invalid"]
    limit = prop.get(_LIMITS.get(code, ""), "")
    values = ", ".join(str(v) for v in prop.get("enum", ())) if isinstance(prop.get("enum"), list) else ""
    return template.format(limit=limit, values=values)
