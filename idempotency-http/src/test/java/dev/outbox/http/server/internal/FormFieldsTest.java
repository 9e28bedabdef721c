package dev.outbox.http.server.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.web.filter.FormContentFilter;

/**
 * G5 for a form whose body a filter ahead of {@code IdempotencyFilter} parsed into the request's
 * parameters: the canonical encoding of the fields tells two different forms apart and gives the
 * same form the same bytes on every retry, also when the query string carries fields of its own;
 * a body read and dropped is not mistaken for a parsed form. The forms are parsed by Spring's own
 * {@code FormContentFilter}, which Spring Boot registers ahead of Spring Security.
 */
class FormFieldsTest {

    @Test
    void encodesNamesAndValuesAsUrlEncoderDoesInUtf8() {
        Map<String, String[]> fields = new LinkedHashMap<>();
        fields.put("a b", new String[] {"x&y=z%", "~!'()"});
        fields.put("é", new String[] {"€ 𝄞"});
        fields.put("empty", new String[] {""});
        fields.put("-._*", new String[] {"AZaz09"});
        String expected = "a+b=x%26y%3Dz%25&a+b=%7E%21%27%28%29&%C3%A9=%E2%82%AC+%F0%9D%84%9E&empty=&-._*=AZaz09";
        assertThat(new String(FormFields.encode(fields), StandardCharsets.US_ASCII))
                .isEqualTo(expected);
        StringBuilder byUrlEncoder = new StringBuilder();
        fields.forEach((name, values) -> {
            for (String v : values) {
                byUrlEncoder
                        .append(byUrlEncoder.isEmpty() ? "" : "&")
                        .append(URLEncoder.encode(name, StandardCharsets.UTF_8))
                        .append('=')
                        .append(URLEncoder.encode(v, StandardCharsets.UTF_8));
            }
        });
        assertThat(byUrlEncoder).hasToString(expected);
        assertThat(FormFields.encode(Map.of())).isEmpty();
    }

    /** Parameters that differ in any name, value, value order or name order never share an encoding. */
    @Test
    void differentParametersNeverShareAnEncoding() {
        List<Map<String, String[]>> all = List.of(
                params("a", "1&b=2"),
                params("a", "1", "b", "2"),
                params("a=b", "c"),
                params("a", "b=c"),
                params("a", null),
                params("a", ""),
                params("a%41", "1"),
                params("aA", "1"),
                params("a+", "1"),
                params("a ", "1"),
                params("a", "\uD800"),
                params("a", "?"),
                params("a", "\uFFFD"),
                params("a", "\uD834\uDD1E"),
                params("a", "\uDD1E\uD834"),
                params("b", "2", "a", "1"),
                multi("a", "1", "2"),
                multi("a", "2", "1"),
                multi("a", "1,2"),
                params("", "1"),
                params("", ""),
                params("", null, "a", "1"),
                new LinkedHashMap<>());
        Set<String> encodings = new HashSet<>();
        for (Map<String, String[]> p : all) {
            encodings.add(new String(FormFields.encode(p), StandardCharsets.US_ASCII));
        }
        assertThat(encodings).hasSameSizeAs(all);
        // a field without '=' is written as a bare name, as a form body carries it
        assertThat(FormFields.encode(params("a", null))).asString().isEqualTo("a");
    }

    @Test
    void aQueryStringHasAtMostOneFieldPerNonEmptyPart() {
        assertThat(FormFields.queryFields(null)).isZero();
        assertThat(FormFields.queryFields("")).isZero();
        assertThat(FormFields.queryFields("&&")).isZero();
        assertThat(FormFields.queryFields("a")).isEqualTo(1);
        assertThat(FormFields.queryFields("a=1&&b=&c")).isEqualTo(3);
        assertThat(FormFields.queryFields("a=1;b=2")).isEqualTo(1);
    }

    @Test
    void onlyFormUrlencodedIsAForm() {
        assertThat(FormFields.isForm("application/x-www-form-urlencoded")).isTrue();
        assertThat(FormFields.isForm(" Application/X-WWW-Form-Urlencoded ; charset=UTF-8"))
                .isTrue();
        assertThat(FormFields.isForm("application/x-www-form-urlencodedx")).isFalse();
        assertThat(FormFields.isForm("application/json")).isFalse();
        assertThat(FormFields.isForm("multipart/form-data; boundary=x")).isFalse();
        assertThat(FormFields.isForm(null)).isFalse();
    }

    /**
     * The same query string and body, parsed by Spring's {@code FormContentFilter}, give the same
     * encoding on every attempt; with the same query string, every other body gives another one, also
     * when its fields repeat the query string's or reorder one name's values. The query string itself
     * is fingerprinted as sent, so a request with another one is refused whatever its body.
     */
    @Test
    void formsParsedByFormContentFilterAreToldApartAlsoNextToAQueryString() throws Exception {
        for (String query : new String[] {null, "carrier=dhl", "carrier=dhl&label=x"}) {
            List<String> bodies = List.of(
                    "label=fragile",
                    "label=fragile&note=ring",
                    "label=fragile&label=fragile",
                    "label=fragile&carrier=dhl",
                    "carrier=dhl",
                    "carrier=ups",
                    "label=fragile+%26+heavy",
                    "label=fragile&heavy",
                    "label",
                    "label=",
                    "label=a&note=b&label=c",
                    "label=c&note=b&label=a");
            Set<String> encodings = new HashSet<>();
            for (String body : bodies) {
                HttpServletRequest parsed = parsedByFormContentFilter("PATCH", query, body);
                assertThat(FormFields.parsedAhead(parsed)).as(body).isTrue();
                assertThat(parsed.getInputStream().read())
                        .as("the body is gone")
                        .isEqualTo(-1);
                String encoding = new String(FormFields.encode(parsed.getParameterMap()), StandardCharsets.US_ASCII);
                assertThat(encodings.add(encoding))
                        .as("%s after ?%s: %s", body, query, encoding)
                        .isTrue();
                String again = new String(
                        FormFields.encode(
                                parsedByFormContentFilter("PATCH", query, body).getParameterMap()),
                        StandardCharsets.US_ASCII);
                assertThat(again).as("a retry of %s", body).isEqualTo(encoding);
            }
        }
        // the fields in another order of names are another request, as far as the parameters keep that order: a
        // name's values stay together, after the query string's own
        assertThat(encoding(null, "label=fragile&note=ring")).isNotEqualTo(encoding(null, "note=ring&label=fragile"));
        assertThat(encoding("carrier=dhl", "label=fragile&carrier=ups"))
                .isEqualTo(encoding("carrier=dhl", "carrier=ups&label=fragile"))
                .isEqualTo("carrier=dhl&carrier=ups&label=fragile");
        assertThat(encoding(null, "a=1&b=2&a=3"))
                .isEqualTo(encoding(null, "a=1&a=3&b=2"))
                .isEqualTo("a=1&a=3&b=2");
        // the encoding is the fields as the handler reads them, query string's first, as a body would carry them
        assertThat(FormFields.encode(parsedByFormContentFilter("PUT", "carrier=dhl", "label=a+b&carrier=ups")
                        .getParameterMap()))
                .asString()
                .isEqualTo("carrier=dhl&carrier=ups&label=a+b");
    }

    /**
     * What a body parsed by a filter ahead leaves the filter: nothing to hand on, and the encoding
     * of the fields to fingerprint. A body read and dropped (JSON, or a form no filter parsed) is
     * refused with 500; sent chunked, a parsed form whose encoding is over the limit with 413.
     */
    @Test
    void admissionFingerprintsAParsedFormAndRefusesADroppedBody() throws Exception {
        MockHttpServletResponse response = new MockHttpServletResponse();
        Admission.Body body =
                admission(1024).body(parsedByFormContentFilter("DELETE", "id=7", "reason=dup"), "/orders", response);
        assertThat(body).isNotNull();
        assertThat(body.content()).isEmpty();
        assertThat(body.fingerprinted()).asString().isEqualTo("id=7&reason=dup");

        MockHttpServletRequest json = request("PATCH", null, "{\"a\":1}", "application/json");
        json.getInputStream().readAllBytes();
        response = new MockHttpServletResponse();
        assertThat(admission(1024).body(json, "/orders", response)).isNull();
        assertThat(response.getStatus()).isEqualTo(500);

        // a form read as a stream, not parsed: the parameters are the query string's only
        MockHttpServletRequest form = request("PATCH", "id=7", "reason=dup", "application/x-www-form-urlencoded");
        form.getInputStream().readAllBytes();
        response = new MockHttpServletResponse();
        assertThat(admission(1024).body(form, "/orders", response)).isNull();
        assertThat(response.getStatus()).isEqualTo(500);

        HttpServletRequest chunked =
                new HttpServletRequestWrapper(parsedByFormContentFilter("PATCH", null, "reason=" + "x".repeat(40))) {
                    @Override
                    public long getContentLengthLong() {
                        return -1;
                    }

                    @Override
                    public int getContentLength() {
                        return -1;
                    }
                };
        response = new MockHttpServletResponse();
        assertThat(admission(32).body(chunked, "/orders", response)).isNull();
        assertThat(response.getStatus()).isEqualTo(413);
        response = new MockHttpServletResponse();
        assertThat(admission(1024).body(chunked, "/orders", response).fingerprinted())
                .asString()
                .isEqualTo("reason=" + "x".repeat(40));
    }

    private static String encoding(String query, String body) throws Exception {
        return new String(
                FormFields.encode(
                        parsedByFormContentFilter("PATCH", query, body).getParameterMap()),
                StandardCharsets.US_ASCII);
    }

    private static Admission admission(int maxBodyBytes) {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        return new Admission(
                maxBodyBytes,
                LoggerFactory.getLogger(FormFieldsTest.class),
                "[test] ",
                registry.counter("rejected"),
                registry.counter("too_large"),
                registry.counter("unidentified"),
                registry.counter("body_unavailable"));
    }

    /** The request as the filters behind Spring's {@code FormContentFilter} see it. */
    private static HttpServletRequest parsedByFormContentFilter(String method, String query, String body)
            throws Exception {
        MockHttpServletRequest request = request(method, query, body, "application/x-www-form-urlencoded");
        AtomicReference<HttpServletRequest> behind = new AtomicReference<>();
        new FormContentFilter()
                .doFilter(request, new MockHttpServletResponse(), (req, res) -> behind.set((HttpServletRequest) req));
        assertThat(behind.get()).as("FormContentFilter wraps the request").isNotSameAs(request);
        return behind.get();
    }

    /** A request with the query string's fields among its parameters, as a container parses them. */
    private static MockHttpServletRequest request(String method, String query, String body, String contentType) {
        MockHttpServletRequest request = new MockHttpServletRequest(method, "/orders");
        request.setContentType(contentType);
        request.setContent(body.getBytes(StandardCharsets.UTF_8));
        if (query != null) {
            request.setQueryString(query);
            for (String part : query.split("&")) {
                int eq = part.indexOf('=');
                request.addParameter(
                        URLDecoder.decode(eq < 0 ? part : part.substring(0, eq), StandardCharsets.UTF_8),
                        eq < 0 ? "" : URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return request;
    }

    private static Map<String, String[]> params(String... namesAndValues) {
        Map<String, String[]> p = new LinkedHashMap<>();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            p.put(namesAndValues[i], new String[] {namesAndValues[i + 1]});
        }
        return p;
    }

    private static Map<String, String[]> multi(String name, String... values) {
        Map<String, String[]> p = new LinkedHashMap<>();
        p.put(name, values.clone());
        return p;
    }
}
