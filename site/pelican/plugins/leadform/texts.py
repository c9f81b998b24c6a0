# ruff: noqa: RUF001  # the full-width punctuation of Chinese and the German quotes are meant
"""Every built-in word of the form, in the languages the plugin speaks.

A page speaks its Pelican `lang` (metadata `Lang`, else `DEFAULT_LANG`),
reduced to the primary subtag (`de-AT` -> `de`, `zh-Hans` -> `zh`); a language
the plugin does not speak gets English. The editor's own words (titles,
descriptions, `x-pattern-message`, ...) come from the schema and its `x-i18n`
(`forms.py`); these are the rest: the status lines, the field errors by code
(leadline.schemas.CODES), the form's chrome and the thank-you page.

Field errors are templates: `{this}` is "This field" or "This box" (in the
page's language), `{limit}`, `{values}`, `{value}`, `{type}` and `{count}`
come from the field's rules and value, `{message}` is an `x-...-message` of
the schema. The English ones give exactly the proxy's words
(leadline/schemas.py), after "This field". A key `<code>:box` words a
checkbox's problem where the plain form would read oddly. `leadform.js`
gets the page's own language only, embedded as JSON.
"""

from __future__ import annotations

from typing import Any

LANGS = ("en", "de", "zh")
FALLBACK = "en"

TEXTS: dict[str, dict[str, Any]] = {
    "en": {
        "say": {
            "saving": "Saving…",
            "queued": "Thank you! We have your request and are sending it to our team.",
            "earlier": "Thank you! Your earlier request is saved on this device and on its way.",
            "offline": "Thank you! Your request is saved on this device and will be sent once our server "
                       "is reachable.",
            "sent": "Thank you! Your request has reached our team. We will get back to you within one "
                    "business day.",
            "invalid": "Please correct the fields marked above.",
            "rejected": "We could not accept your request: please correct the fields marked above and "
                        "send it again.",
            "refused": "We could not accept your request ({reason}). Please check it and send it again.",
            "status": "error {status}",
        },
        "this": {"field": "This field", "box": "This box"},
        "types": {"string": "text", "boolean": "true or false", "integer": "a whole number",
                  "number": "a number"},
        "errors": {
            "required": "{this} is required.",
            "required:box": "{this} must be ticked.",
            "type": "{this} must be {type}.",
            "const": "{this} must be {value}.",
            "const:box": "{this} must be ticked.",
            "enum": "{this} must be one of {values}.",
            "minimum": "{this} must be at least {limit}.",
            "maximum": "{this} must be at most {limit}.",
            "empty": "{this} must not be empty.",
            "minLength": "{this} must be at least {limit} characters.",
            "maxLength": "{this} must be at most {limit} characters (it has {count}).",
            "format": "{this} is not in the expected format.",
            "pattern": "{this} is not in the expected format.",
            "custom": "{this} {message}.",
            "invalid": "{this} {message}.",
        },
        # Errors no field on the page owns (a field the form lacks, the whole body).
        "other": {
            "additional": "{field} is not a field of this form",
            "stamp": "this browser's proof of work was missing or expired",
            "invalid": "{field} {message}",
        },
        "chrome": {"optional": "(optional)", "choose": "Choose…", "submit": "Send",
                   "honeypot": "Leave this empty"},
        "thanks": {"title": "Thank you", "heading": "Thank you!",
                   "body": "We have your request and will get back to you soon.",
                   "body_titled": "We have your request (“{title}”) and will get back to you soon.",
                   "back": "Back to {site}"},
    },
    "de": {
        "say": {
            "saving": "Wird gespeichert…",
            "queued": "Vielen Dank! Wir haben Ihre Anfrage erhalten und leiten sie an unser Team weiter.",
            "earlier": "Vielen Dank! Ihre frühere Anfrage ist auf diesem Gerät gespeichert und unterwegs.",
            "offline": "Vielen Dank! Ihre Anfrage ist auf diesem Gerät gespeichert und wird gesendet, "
                       "sobald unser Server wieder erreichbar ist.",
            "sent": "Vielen Dank! Ihre Anfrage ist bei unserem Team angekommen. Wir melden uns innerhalb "
                    "eines Werktags bei Ihnen.",
            "invalid": "Bitte korrigieren Sie die markierten Felder.",
            "rejected": "Wir konnten Ihre Anfrage nicht annehmen. Bitte korrigieren Sie die markierten "
                        "Felder und senden Sie sie noch einmal.",
            "refused": "Wir konnten Ihre Anfrage nicht annehmen ({reason}). Bitte prüfen Sie Ihre Angaben "
                       "und senden Sie sie noch einmal.",
            "status": "Fehler {status}",
        },
        "this": {"field": "Dieses Feld", "box": "Dieses Kästchen"},
        "types": {"string": "Text", "boolean": "ja oder nein", "integer": "eine ganze Zahl",
                  "number": "eine Zahl"},
        "errors": {
            "required": "Bitte füllen Sie dieses Feld aus.",
            "required:box": "Bitte setzen Sie hier ein Häkchen.",
            "type": "{this} muss {type} enthalten.",
            "const": "{this} muss den Wert {value} haben.",
            "const:box": "Bitte setzen Sie hier ein Häkchen.",
            "enum": "Bitte wählen Sie einen dieser Werte: {values}.",
            "minimum": "Der Wert muss mindestens {limit} betragen.",
            "maximum": "Der Wert darf höchstens {limit} betragen.",
            "empty": "{this} darf nicht leer sein.",
            "minLength": "Bitte geben Sie mindestens {limit} Zeichen ein.",
            "maxLength": "Bitte höchstens {limit} Zeichen (derzeit {count}).",
            "format": "Das Format stimmt nicht.",
            "pattern": "Das Format stimmt nicht.",
            "custom": "{this} {message}.",
            "invalid": "Diese Angabe ist ungültig.",
        },
        "other": {
            "additional": "das Feld „{field}“ gibt es in diesem Formular nicht",
            "stamp": "der Echtheitsnachweis dieses Browsers fehlte oder war abgelaufen",
            "invalid": "die Anfrage ist ungültig",
        },
        "chrome": {"optional": "(optional)", "choose": "Bitte wählen…", "submit": "Senden",
                   "honeypot": "Dieses Feld bitte leer lassen"},
        "thanks": {"title": "Vielen Dank", "heading": "Vielen Dank!",
                   "body": "Ihre Anfrage ist bei uns angekommen. Wir melden uns in Kürze bei Ihnen.",
                   "body_titled": "Ihre Anfrage („{title}“) ist bei uns angekommen. Wir melden uns in "
                                  "Kürze bei Ihnen.",
                   "back": "Zurück zu {site}"},
    },
    "zh": {
        "say": {
            "saving": "正在保存…",
            "queued": "谢谢！我们已收到您的请求，正在转交给我们的团队。",
            "earlier": "谢谢！您之前提交的请求已保存在本设备上，正在发送。",
            "offline": "谢谢！您的请求已保存在本设备上，我们的服务器恢复连接后会自动发送。",
            "sent": "谢谢！您的请求已送达我们的团队，我们会在一个工作日内与您联系。",
            "invalid": "请修改上面标出的内容。",
            "rejected": "您的请求未能提交成功：请修改上面标出的内容后重新提交。",
            "refused": "您的请求未能提交成功（{reason}）。请检查后重新提交。",
            "status": "错误 {status}",
        },
        "this": {"field": "此项", "box": "此项"},
        "types": {"string": "文本", "boolean": "是或否", "integer": "整数", "number": "数字"},
        "errors": {
            "required": "此项为必填项。",
            "required:box": "请勾选此项。",
            "type": "此项必须是{type}。",
            "const": "此项的值必须为 {value}。",
            "const:box": "请勾选此项。",
            "enum": "请从以下选项中选择：{values}。",
            "minimum": "数值不能小于 {limit}。",
            "maximum": "数值不能大于 {limit}。",
            "empty": "此项不能为空。",
            "minLength": "请至少输入 {limit} 个字符。",
            "maxLength": "最多 {limit} 个字符（当前 {count} 个）。",
            "format": "格式不正确。",
            "pattern": "格式不正确。",
            "custom": "{this}{message}。",
            "invalid": "此项填写有误。",
        },
        "other": {
            "additional": "此表单没有“{field}”这一项",
            "stamp": "浏览器的验证信息缺失或已过期",
            "invalid": "请求无效",
        },
        "chrome": {"optional": "（选填）", "choose": "请选择…", "submit": "提交",
                   "honeypot": "此项请留空"},
        "thanks": {"title": "谢谢", "heading": "谢谢！",
                   "body": "我们已收到您的请求，会尽快与您联系。",
                   "body_titled": "我们已收到您的请求（“{title}”），会尽快与您联系。",
                   "back": "返回{site}"},
    },
}


def primary(tag: object) -> str:
    """The primary subtag of a language tag, lower case (`de-AT` -> `de`); "" for none."""
    return str(tag or "").strip().replace("_", "-").split("-", 1)[0].lower()


def reduce(tag: object) -> str:
    """The built-in language a page with this tag gets (C3): en, de or zh."""
    code = primary(tag)
    return code if code in TEXTS else FALLBACK


def texts(lang: str) -> dict[str, Any]:
    """The built-in texts of one language (reduced first)."""
    return TEXTS[reduce(lang)]
