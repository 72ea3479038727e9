"""What the consent page says, in plain Chinese: each data scope, each partner kind, each error a citizen may meet.

The catalogs (credit/catalog.py `DATA_SCOPES`, partners/scopes.py `PARTNER_KINDS`) name things for partners and
operators ("score_band: 信用分区间 (e.g. 700-749)"); a citizen deciding in a web-view needs a sentence saying what
the partner will see. tests/accounts/test_consent_page.py checks that every catalog entry has its sentence here,
so a new scope cannot reach the page unexplained.
"""

from __future__ import annotations

from credit.catalog import DIMENSIONS

SCOPE_WORDS: dict[str, str] = {
    "tier": "您的信用等级（AAA、AA、A、B、C 五档中的一档）",
    "score_band": "您的信用分所在的区间（例如 700–749 分），不含具体分数",
    "score": "您的具体信用分",
    "dimensions": "信用分五个方面各自的得分（" + "、".join(DIMENSIONS.values()) + "）",
    "reasons": "影响您信用分的主要因素（例如按时履约、欠费），不含记录明细",
    "portrait": "企业信用画像（企业的经营、纳税与信用概况）",
}

PARTNER_KIND_WORDS: dict[str, str] = {
    "bank": "银行",
    "merchant": "商户",
    "data_source": "数据提供单位",
    "government": "政府部门",
    "city_peer": "合作城市",
}

# What a citizen reads when a step fails, by the service's stable error code (core/errors.py and the services).
ERROR_WORDS: dict[str, str] = {
    "invalid_phone": "请输入正确的 11 位手机号码。",
    "otp_resend_throttled": "验证码刚刚发送过，请稍等一会儿再获取。",
    "otp_address_throttled": "获取验证码太频繁，请稍后再试。",
    "otp_daily_limit": "这个手机号今天获取验证码的次数已用完，请明天再试。",
    "sms_unavailable": "短信暂时发送不出去，请稍后再试。",
    "invalid_otp": "验证码不正确或已过期，请重新输入。",
    "otp_attempts_exceeded": "验证码输错次数太多，请重新获取验证码。",
    "account_suspended": "这个账户已被暂停使用，请联系信用办。",
    "invalid_id_number": "身份证号码格式不正确，请检查后重新输入。",
    "identity_mismatch": "姓名与身份证号码不一致，请检查后重新输入。",
    "identity_attempts_exceeded": "今天核验身份的次数已用完，请明天再试。",
    "identity_verifier_unavailable": "身份核验服务暂时不可用，请稍后再试。",
    "identity_already_bound": "这个身份已绑定在另一个账户上，请用那个账户的手机号登录。",
    "account_already_bound": "这个账户已绑定了另一个身份。",
    "account_not_found": "账户不存在或已注销，请重新登录。",
    "identity_not_bound": "请先完成实名认证。",
    "invalid_request_uri": "这个授权链接无效或已过期，请回到申请方页面重新发起。",
    "invalid_request": "授权请求不完整，请回到申请方页面重新发起。",
    "invalid_client": "发起授权的机构无法识别，请回到申请方页面重新发起。",
    "store_unavailable": "服务暂时不可用，请稍后再试。",
    "service_unavailable": "服务暂时不可用，请稍后再试。",
    "partner_suspended": "申请方已被暂停服务，这次授权无法完成。",
    "csrf": "页面已过期或来源不明，请重新打开授权页面后再操作。",
    "missing_field": "请填写完整后再提交。",
}

DEFAULT_ERROR = "操作没有完成，请稍后再试。"


def error_words(code: str) -> str:
    return ERROR_WORDS.get(code, DEFAULT_ERROR)


def partner_kind_words(kind: str) -> str:
    return PARTNER_KIND_WORDS.get(kind, "合作机构")


def scope_words(scope: str) -> str:
    """A scope the table does not know is shown by its code rather than hidden: the citizen sees all that is
    asked (the test above keeps this from happening)."""
    return SCOPE_WORDS.get(scope, scope)
