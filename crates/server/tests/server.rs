//! The server as a client sees it, over real HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rates_server::{Fault, FaultRule, Latency, RatesServer, ServerConfig, When};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

fn get(server: &RatesServer, path: &str) -> (u16, Option<String>, String) {
    let mut r = agent()
        .get(&format!("http://{}{path}", server.addr()))
        .call()
        .expect("an answer");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), retry, body)
}

/// Sends one request over a bare socket and returns every byte the server
/// sends before it closes the connection (bounded by a 10 s read timeout).
fn raw_exchange(server: &RatesServer) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET /rates?base=USD HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    raw
}

#[test]
fn both_api_shapes_answer_alike() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let (s1, _, vat) = get(&server, "/rates?base=usd&symbols=EUR,PLN");
    let (s2, _, frank) = get(&server, "/latest?from=USD&symbols=EUR,PLN");
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(vat, frank);
    assert_eq!(
        vat,
        r#"{"base":"USD","date":"2019-04-09","rates":{"EUR":0.886761,"PLN":3.80438}}"#
    );
    let (_, _, all) = get(&server, "/rates?base=EUR");
    assert!(!all.contains(r#""EUR":"#), "the base is omitted");
    assert_eq!(
        all.matches(':').count(),
        3 + 32,
        "base, date, rates and 32 codes"
    );
}

#[test]
fn bad_requests_get_json_errors() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let (status, _, body) = get(&server, "/rates?base=U5D");
    assert_eq!(status, 422);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("U5D"));
    let (status, _, body) = get(&server, "/convert?base=USD");
    assert_eq!(status, 404);
    assert!(body.contains("/rates?base=USD"));
    let stats = server.stats();
    assert_eq!((stats.status_count(422), stats.status_count(404)), (1, 1));
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let server = RatesServer::start(
        ServerConfig::default().with_rate_limit(rates_core::RateLimit::per_second(2.0).ok()),
    )
    .unwrap();
    let answers: Vec<_> = (0..3).map(|_| get(&server, "/rates?base=USD")).collect();
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[1].0, 200);
    assert_eq!(answers[2].0, 429);
    assert_eq!(answers[2].1.as_deref(), Some("1"));
}

#[test]
fn truncated_bodies_are_cut_short() {
    let server = RatesServer::start(
        ServerConfig::default().with_fault(FaultRule::new(Fault::Truncated, When::Always)),
    )
    .unwrap();
    let raw = raw_exchange(&server);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let announced: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(body.len() < announced, "{} of {announced}", body.len());
    assert_eq!(server.stats().aborted, 1);
}

#[test]
fn peak_in_flight_is_recorded() {
    let server = RatesServer::start(ServerConfig {
        latency: Latency::Fixed(Duration::from_secs(2)),
        ..ServerConfig::default()
    })
    .unwrap();
    std::thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| assert_eq!(get(&server, "/rates?base=USD").0, 200));
        }
    });
    let stats = server.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.peak_in_flight, 5);
    server.reset_stats();
    assert_eq!(server.stats().requests, 0);
}

#[test]
fn stalls_end_after_the_stall_limit() {
    let server = RatesServer::start(ServerConfig {
        stall: Duration::from_millis(200),
        ..ServerConfig::default().with_fault(FaultRule::new(Fault::Stall, When::Always))
    })
    .unwrap();
    // The connection is closed with no answer, well before the read timeout.
    assert!(raw_exchange(&server).is_empty());
}

#[test]
fn refuses_non_loopback_addresses() {
    let err = RatesServer::start(ServerConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("loopback only"), "{err}");
}

#[test]
fn dropping_the_server_closes_its_port() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn frankfurter_shape_adds_amount_and_serves_the_v1_path() {
    let server =
        RatesServer::start(ServerConfig::default().with_shape(rates_server::Shape::Frankfurter))
            .unwrap();
    assert!(
        server.endpoint().contains("/v1/latest?base={base}"),
        "{}",
        server.endpoint()
    );
    let (status, _, body) = get(&server, "/v1/latest?base=USD&symbols=EUR,PLN");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"amount":1.0,"base":"USD","date":"2019-04-09","rates":{"EUR":0.886761,"PLN":3.80438}}"#
    );
    let (_, _, vat_path) = get(&server, "/rates?base=USD&symbols=EUR,PLN");
    assert_eq!(vat_path, body, "the shape, not the path, decides the body");
}

#[test]
fn tls_serves_https_with_a_certificate_clients_can_trust() {
    let server = RatesServer::start(ServerConfig::default().with_generated_tls()).unwrap();
    assert!(
        server.endpoint().starts_with("https://"),
        "{}",
        server.endpoint()
    );
    let pem = server.certificate_pem().expect("a certificate").to_owned();
    let roots = ureq::tls::parse_pem(pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(roots.len(), 1);
    let trusting = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .build(),
        )
        .build()
        .new_agent();
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/rates?base=USD", server.addr().port());
        let body = trusting
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(body.contains(r#""base":"USD""#), "{body}");
    }
    // Public roots only: the generated certificate is refused.
    let url = format!("https://127.0.0.1:{}/rates?base=USD", server.addr().port());
    let err = ureq::get(&url).call().unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let stats = server.stats();
    assert_eq!(stats.requests, 2, "the refused handshake sent no request");
    assert_eq!(stats.connections, 3, "every accepted connection counts");
    server.reset_stats();
    assert_eq!(server.stats().connections, 0);
}

#[test]
fn plain_http_has_no_certificate() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    assert_eq!(server.certificate_pem(), None);
    assert!(server.endpoint().starts_with("http://"));
}

#[test]
fn a_broken_certificate_is_refused_at_start_with_a_hint() {
    let config = ServerConfig {
        tls: Some(rates_server::ServerTls::Pem {
            cert_chain: "not pem".into(),
            key: "not pem".into(),
        }),
        ..ServerConfig::default()
    };
    let err = RatesServer::start(config).unwrap_err();
    assert!(err.to_string().contains("--cert"), "{err}");
}
