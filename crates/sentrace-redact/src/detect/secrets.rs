//! Cloud and SaaS credential formats, written from each vendor's published token format.
//!
//! Each rule has literal keywords (any of which must occur, case-insensitively, before the
//! rule's regex runs), a regex whose first capture group is the secret, and an optional
//! minimum Shannon entropy that rejects placeholders such as `ghp_xxxxxxxx...`.

/// One credential format.
#[derive(Debug, Clone, Copy)]
pub struct SecretRule {
    /// Stable rule id, reported in findings (`aws-access-key-id`, `github-pat`, ...).
    pub id: &'static str,
    /// Literals that must occur for the regex to be tried (case-insensitive).
    pub keywords: &'static [&'static str],
    /// Regex; capture group 1 is the secret.
    pub regex: &'static str,
    /// Minimum entropy (bits per byte) of the secret, 0 for none.
    pub min_entropy: f32,
}

const fn rule(
    id: &'static str,
    keywords: &'static [&'static str],
    regex: &'static str,
    min_entropy: f32,
) -> SecretRule {
    SecretRule {
        id,
        keywords,
        regex,
        min_entropy,
    }
}

/// The built-in credential formats.
pub const RULES: &[SecretRule] = &[
    rule(
        "aws-access-key-id",
        &["akia", "asia", "abia", "acca", "a3t"],
        r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        3.0,
    ),
    rule(
        "azure-storage-account-key",
        &["accountkey="],
        r"(?i:AccountKey)=([A-Za-z0-9+/]{86}==)",
        0.0,
    ),
    rule(
        "azure-ad-client-secret",
        &["q~"],
        r"(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)",
        3.0,
    ),
    rule(
        "gcp-api-key",
        &["aiza"],
        r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule(
        "gcp-oauth-access-token",
        &["ya29."],
        r"\b(ya29\.[0-9A-Za-z_\-]{20,})",
        3.0,
    ),
    rule(
        "gcp-oauth-client-secret",
        &["gocspx-"],
        r"\b(GOCSPX-[0-9A-Za-z_\-]{28})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule(
        "github-token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\b(gh[pousr]_[0-9A-Za-z]{36,255})\b",
        3.0,
    ),
    rule(
        "github-fine-grained-pat",
        &["github_pat_"],
        r"\b(github_pat_[0-9A-Za-z_]{82})\b",
        3.0,
    ),
    rule(
        "gitlab-token",
        &[
            "glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-", "glimt-", "glagent-",
            "gloas-", "glffct-", "glft-", "glrtr-",
        ],
        r"\b(gl(?:pat|dt|rt|ptt|soat|cbt|imt|agent|oas|ffct|ft|rtr)-[0-9A-Za-z_\-]{20,64})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule(
        "gitlab-runner-registration-token",
        &["gr1348941"],
        r"\b(GR1348941[0-9A-Za-z_\-]{20})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule(
        "slack-token",
        &[
            "xoxb-", "xoxa-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xoxc-",
        ],
        r"\b(xox[abposrec](?:\.xox[abposrec])?-[0-9A-Za-z\-]{10,250})",
        3.0,
    ),
    rule(
        "slack-app-token",
        &["xapp-"],
        r"\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)\b",
        3.0,
    ),
    rule(
        "slack-webhook-url",
        &["hooks.slack.com"],
        r"(hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,})",
        3.0,
    ),
    rule(
        "stripe-secret-key",
        &[
            "sk_live_", "sk_test_", "rk_live_", "rk_test_", "sk_prod_", "rk_prod_",
        ],
        r"\b((?:sk|rk)_(?:test|live|prod)_[0-9A-Za-z]{10,99})\b",
        3.0,
    ),
    rule(
        "stripe-webhook-secret",
        &["whsec_"],
        r"\b(whsec_[0-9A-Za-z+/]{32,})",
        3.0,
    ),
    rule(
        "openai-api-key",
        &["t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}))",
        3.0,
    ),
    rule(
        "anthropic-api-key",
        &["sk-ant-"],
        r"\b(sk-ant-[a-z0-9]+-[A-Za-z0-9_\-]{20,})",
        3.0,
    ),
    rule(
        "sendgrid-api-key",
        &["sg."],
        r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule("twilio-api-key", &["sk"], r"\b(SK[0-9a-fA-F]{32})\b", 3.0),
    rule(
        "npm-access-token",
        &["npm_"],
        r"\b(npm_[A-Za-z0-9]{36})\b",
        3.0,
    ),
    rule(
        "pypi-upload-token",
        &["pypi-ageichlwas5vcmc"],
        r"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        0.0,
    ),
    rule(
        "shopify-token",
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        r"\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b",
        3.0,
    ),
    rule(
        "digitalocean-token",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        r"\b(do[opr]_v1_[a-f0-9]{64})\b",
        3.0,
    ),
    rule(
        "hashicorp-vault-token",
        &["hvs.", "hvb.", "hvr."],
        r"\b(hv[sbr]\.[A-Za-z0-9_\-]{24,})",
        3.0,
    ),
    rule(
        "terraform-cloud-token",
        &[".atlasv1."],
        r"\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70})",
        3.0,
    ),
    rule(
        "atlassian-api-token",
        &["atatt3"],
        r"\b(ATATT3[A-Za-z0-9_\-=]{186})",
        3.0,
    ),
    rule(
        "postman-api-key",
        &["pmak-"],
        r"\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b",
        3.0,
    ),
    rule(
        "linear-api-key",
        &["lin_api_"],
        r"\b(lin_api_[A-Za-z0-9]{40})\b",
        3.0,
    ),
    rule(
        "grafana-token",
        &["glc_", "glsa_"],
        r"\b(glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})",
        3.0,
    ),
    rule(
        "new-relic-key",
        &["nrak-", "nrjs-", "nrii-"],
        r"\b(NR(?:AK|JS|II)-[A-Za-z0-9]{19,32})\b",
        3.0,
    ),
    rule(
        "age-secret-key",
        &["age-secret-key-1"],
        r"(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})",
        0.0,
    ),
    rule(
        "databricks-token",
        &["dapi"],
        r"\b(dapi[a-f0-9]{32}(?:-\d)?)\b",
        3.0,
    ),
    rule("mailgun-api-key", &["key-"], r"\b(key-[a-f0-9]{32})\b", 3.0),
    rule(
        "doppler-token",
        &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."],
        r"\b(dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,44})\b",
        3.0,
    ),
    rule(
        "sentry-token",
        &["sntrys_", "sntryu_"],
        r"\b(sntrys_eyJ[A-Za-z0-9+/=_\-]{60,}|sntryu_[a-f0-9]{64})",
        3.0,
    ),
    rule("huggingface-token", &["hf_"], r"\b(hf_[A-Za-z]{34})\b", 3.0),
    rule(
        "telegram-bot-token",
        &[":aa"],
        r"\b(\d{8,10}:AA[A-Za-z0-9_\-]{33})(?:[^0-9A-Za-z_\-]|$)",
        3.0,
    ),
    rule(
        "square-token",
        &["sq0atp-", "sq0csp-"],
        r"\b(sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,43})",
        3.0,
    ),
    rule(
        "dynatrace-token",
        &["dt0c01."],
        r"\b(dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64})\b",
        3.0,
    ),
    rule(
        "mapbox-secret-token",
        &["sk.eyj"],
        r"\b(sk\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,})",
        3.0,
    ),
    rule("pulumi-token", &["pul-"], r"\b(pul-[a-f0-9]{40})\b", 3.0),
    rule(
        "planetscale-token",
        &["pscale_tkn_", "pscale_pw_", "pscale_oauth_"],
        r"\b(pscale_(?:tkn|pw|oauth)_[A-Za-z0-9=\-_.]{32,64})",
        3.0,
    ),
    rule(
        "flyio-token",
        &["fo1_", "fm1r_", "fm2_"],
        r"\b((?:fo1_[A-Za-z0-9_-]{43}|fm1r_[A-Za-z0-9_+/=]{100,}|fm2_[A-Za-z0-9_+/=]{100,}))",
        3.0,
    ),
    rule(
        "facebook-access-token",
        &["eaam", "eaac"],
        r"\b(EAA[MC][A-Za-z0-9]{100,})",
        3.0,
    ),
    rule(
        "discord-webhook-url",
        &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
        r"(discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]{60,})",
        3.0,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles_and_has_one_group() {
        for r in RULES {
            let re = regex::Regex::new(r.regex).unwrap_or_else(|e| panic!("{}: {e}", r.id));
            assert!(re.captures_len() >= 2, "{} has no capture group", r.id);
            assert!(!r.keywords.is_empty(), "{} has no keyword", r.id);
            for k in r.keywords {
                assert_eq!(
                    *k,
                    k.to_ascii_lowercase(),
                    "{}: keywords are lower-case",
                    r.id
                );
            }
        }
    }
}
