use msn_proto::passport::*;

const POLICY: &str = "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764229,kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619";

#[test]
fn authorization_header_byte_exact_and_parsed_back() {
    let h = authorization_header("alice@hotmail.com", "p@ss word,", POLICY);
    assert_eq!(
        h,
        format!("Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=alice%40hotmail.com,pwd=p%40ss%20word%2C,{POLICY}")
    );
    let c = parse_authorization(&h).unwrap();
    assert_eq!(c.sign_in, "alice@hotmail.com");
    assert_eq!(c.password, "p@ss word,");
    assert_eq!(c.policy, POLICY);
    assert!(!format!("{c:?}").contains("p@ss"));
    assert!(parse_authorization("Basic abc").is_none());
}

#[test]
fn passport_urls_both_forms() {
    let v = "DARealm=Passport.Net,DALogin=login.passport.com/login2.srf,DAReg=x,Properties=y";
    let u = parse_passport_urls(v, "https").unwrap();
    assert_eq!(u.to_url(), "https://login.passport.com/login2.srf");
    let v = passport_urls_value("http://127.0.0.1:8080/login");
    let u = parse_passport_urls(&v, "https").unwrap();
    assert_eq!(
        (u.scheme.as_str(), u.host.as_str(), u.path.as_str()),
        ("http", "127.0.0.1:8080", "/login")
    );
    assert!(parse_passport_urls("DARealm=x", "https").is_none());
}

#[test]
fn login_responses() {
    let info = authentication_info_value("t=abc&p=def");
    assert_eq!(
        parse_authentication_info(&info).as_deref(),
        Some("t=abc&p=def")
    );
    let headers = |name: &str| match name {
        "Authentication-Info" => Some(info.as_str()),
        _ => None,
    };
    assert_eq!(
        classify_response(200, headers, "https"),
        LoginResponse::Ticket("t=abc&p=def".into())
    );
    let redirect = |name: &str| (name == "Location").then_some("http://127.0.0.1:1/login2");
    assert_eq!(
        classify_response(302, redirect, "https"),
        LoginResponse::Redirect(
            msn_proto::passport::LoginUrl::parse("http://127.0.0.1:1/login2", "https").unwrap()
        )
    );
    let failed = |name: &str| (name == "WWW-Authenticate").then_some(WWW_AUTHENTICATE_FAILED);
    assert_eq!(da_status(WWW_AUTHENTICATE_FAILED), Some("failed"));
    assert_eq!(
        classify_response(401, failed, "https"),
        LoginResponse::BadCredentials
    );
    assert!(matches!(
        classify_response(500, |_| None, "https"),
        LoginResponse::Failed(_)
    ));
    assert!(matches!(
        classify_response(200, |_| None, "https"),
        LoginResponse::Failed(_)
    ));
}

#[test]
fn challenge_md5() {
    use msn_proto::challenge::*;
    // md5("" ) sanity and a known pair computed independently.
    assert_eq!(
        challenge_response("", ""),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    let r = challenge_response("22210219642164014968", PRODUCT_KEY);
    assert_eq!(r, "c60f42bcef15148c614190c61e8eebf6");
    assert!(verify_response(
        "22210219642164014968",
        PRODUCT_ID,
        r.as_bytes()
    ));
    assert!(!verify_response(
        "22210219642164014969",
        PRODUCT_ID,
        r.as_bytes()
    ));
    let old = challenge_response("15570131571988941333", OLD_PRODUCT_KEY);
    assert!(verify_response(
        "15570131571988941333",
        OLD_PRODUCT_ID,
        old.as_bytes()
    ));
}
