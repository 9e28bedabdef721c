package dev.outbox.http.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/** Bad configuration fails at build time, naming the setting, the value and the fix. */
class BuildersTest {

    @Test
    void storeNeedsExactlyOneDatabase() {
        assertThatThrownBy(() -> IdempotencyStore.builder().build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("dsl(DSLContext) or dataSource(DataSource)");
        var ds = new PGSimpleDataSource();
        assertThatThrownBy(() -> IdempotencyStore.builder()
                        .dataSource(ds)
                        .dsl(DSL.using(ds, SQLDialect.POSTGRES))
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("both");
    }

    @Test
    void storeRejectsOutOfRangeValues() {
        var b = IdempotencyStore.builder();
        assertThatThrownBy(() -> b.lockTimeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lockTimeout")
                .hasMessageContaining("0s");
        assertThatThrownBy(() -> b.lockTimeout(Duration.ofMinutes(11)))
                .hasMessageContaining("between 1ms and 10m, got 11m");
        assertThatThrownBy(() -> b.ttl(Duration.ofSeconds(-1))).hasMessageContaining("ttl must be positive");
        assertThatThrownBy(() -> b.retryAfter(Duration.ofHours(2))).hasMessageContaining("retryAfter");
        assertThatThrownBy(() -> b.holdTimeout(Duration.ofMillis(999)))
                .hasMessageContaining("holdTimeout")
                .hasMessageContaining("default is 1m");
        assertThatThrownBy(() -> b.holdTimeout(Duration.ofHours(25))).hasMessageContaining("holdTimeout");
        assertThatThrownBy(() -> b.purgeBatchSize(0))
                .hasMessageContaining("purgeBatchSize")
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> b.schema("Bad-Schema")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.clock(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("clock");
        assertThatThrownBy(() -> b.name(" ")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void storeApplicationIsValidated() {
        var b = IdempotencyStore.builder();
        assertThatThrownBy(() -> b.application(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("application may not be null; leave it unset for none");
        assertThatThrownBy(() -> b.application(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("application may not be blank; name the application whose keys these are (e.g."
                        + " order-service), or leave it unset for none");
        assertThatThrownBy(() -> b.application("order service"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("application must be 1 to 64 ASCII letters, digits, '.', '_' or '-', got 'order service'"
                        + " (13 characters); e.g. order-service");
        assertThatThrownBy(() -> b.application("\u00e9tude")).hasMessageContaining("ASCII letters");
        assertThatThrownBy(() -> b.application("a".repeat(IdempotencyStore.Builder.MAX_APPLICATION_LENGTH + 1)))
                .hasMessageContaining("(65 characters)");
        assertThat(b.application("a".repeat(IdempotencyStore.Builder.MAX_APPLICATION_LENGTH)))
                .isSameAs(b);
        assertThat(b.application("Order_Service-2.eu")).isSameAs(b);
    }

    @Test
    void storeSettersRejectNullWithNullPointerException() {
        var b = IdempotencyStore.builder();
        assertThatThrownBy(() -> b.dsl(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("dsl");
        assertThatThrownBy(() -> b.dataSource(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("dataSource");
        assertThatThrownBy(() -> b.schema(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("schema");
        assertThatThrownBy(() -> b.lockTimeout(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("lockTimeout");
        assertThatThrownBy(() -> b.retryAfter(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("retryAfter");
        assertThatThrownBy(() -> b.holdTimeout(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("holdTimeout");
        assertThatThrownBy(() -> b.ttl(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("ttl");
        assertThatThrownBy(() -> b.meterRegistry(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("meterRegistry");
        assertThatThrownBy(() -> b.name(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("name");
    }

    @Test
    void storeBoundsAreThePublishedConstants() {
        var b = IdempotencyStore.builder();
        b.lockTimeout(IdempotencyStore.Builder.MIN_LOCK_TIMEOUT).lockTimeout(IdempotencyStore.Builder.MAX_LOCK_TIMEOUT);
        b.holdTimeout(IdempotencyStore.Builder.MIN_HOLD_TIMEOUT).holdTimeout(IdempotencyStore.Builder.MAX_HOLD_TIMEOUT);
        b.retryAfter(Duration.ZERO).retryAfter(IdempotencyStore.Builder.MAX_RETRY_AFTER);
        b.purgeBatchSize(IdempotencyStore.Builder.MAX_PURGE_BATCH_SIZE);
        assertThatThrownBy(() -> b.retryAfter(IdempotencyStore.Builder.MAX_RETRY_AFTER.plusMillis(1)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.purgeBatchSize(IdempotencyStore.Builder.MAX_PURGE_BATCH_SIZE + 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default is 1000");
        assertThat(IdempotencyStore.builder()
                        .dataSource(new PGSimpleDataSource())
                        .build()
                        .ttl())
                .isEqualTo(IdempotencyStore.Builder.DEFAULT_TTL);
    }

    @Test
    void filterSettersRejectNullWithNullPointerException() {
        var b = IdempotencyFilter.builder(
                IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build());
        assertThatThrownBy(() -> b.methods((String[]) null)).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> b.methods("POST", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("methods");
        assertThatThrownBy(() -> b.paths("/orders", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("paths");
        assertThatThrownBy(() -> b.scopeResolver(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("scopeResolver");
        assertThatThrownBy(() -> b.fingerprint(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("fingerprint");
        assertThatThrownBy(() -> b.storedHeaders("ETag", null)).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> b.meterRegistry(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("meterRegistry");
        assertThatThrownBy(() -> b.name(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("name");
    }

    @Test
    void filterBoundsAreThePublishedConstants() {
        var b = IdempotencyFilter.builder(
                IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build());
        b.maxBodyBytes(0).maxBodyBytes(IdempotencyFilter.Builder.MAX_BODY_BYTES);
        assertThatThrownBy(() -> b.maxBodyBytes(IdempotencyFilter.Builder.MAX_BODY_BYTES + 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("67108864")
                .hasMessageContaining("default is 1048576");
        b.maxResponseBytes(0).maxResponseBytes(IdempotencyFilter.Builder.MAX_RESPONSE_BYTES);
        assertThatThrownBy(() -> b.maxResponseBytes(IdempotencyFilter.Builder.MAX_RESPONSE_BYTES + 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxResponseBytes")
                .hasMessageContaining("268435456")
                .hasMessageContaining("default is 8388608");
        assertThatThrownBy(() -> b.storedHeaders(" ")).isInstanceOf(IllegalArgumentException.class);
        IdempotencyFilter defaults = b.build();
        for (String method : IdempotencyFilter.Builder.DEFAULT_METHODS) {
            assertThat(IdempotencyFilter.builder(IdempotencyStore.builder()
                                    .dataSource(new PGSimpleDataSource())
                                    .build())
                            .build()
                            .covers(method, "/anything"))
                    .isTrue();
        }
        assertThat(defaults.covers("PUT", "/anything")).isFalse();
    }

    @Test
    void filterRejectsBadPatternsMethodsAndHeaders() {
        IdempotencyStore store =
                IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build();
        var b = IdempotencyFilter.builder(store);
        assertThatThrownBy(() -> b.paths("orders"))
                .hasMessageContaining("'orders'")
                .hasMessageContaining("/orders/*");
        assertThatThrownBy(() -> b.paths("/orders/*/lines")).hasMessageContaining("not supported");
        // a route as the gate's report names it: /orders/42 would never equal it, so it protected nothing
        assertThatThrownBy(() -> b.paths("/orders/{id}"))
                .hasMessageContaining("'/orders/{id}' is a route template")
                .hasMessageContaining("use the prefix /orders/* (it covers /orders and every path below it)");
        assertThatThrownBy(() -> b.paths("/{tenant}/orders"))
                .hasMessageContaining("use the prefix /* (it covers every path)");
        assertThatThrownBy(() -> b.paths()).hasMessageContaining("may not be empty");
        assertThatThrownBy(() -> b.methods("PO ST")).hasMessageContaining("'PO ST'");
        assertThatThrownBy(() -> b.storedHeaders("Set-Cookie")).hasMessageContaining("Set-Cookie");
        assertThatThrownBy(() -> b.responsePolicy(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("responsePolicy");
        assertThatThrownBy(() -> b.maxBodyBytes(-1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxBodyBytes")
                .hasMessageContaining("-1");
        assertThatThrownBy(() -> IdempotencyFilter.builder(null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void coversAnswersForTheConfiguredMethodsAndPaths() {
        IdempotencyStore store =
                IdempotencyStore.builder().dataSource(new PGSimpleDataSource()).build();
        IdempotencyFilter filter =
                IdempotencyFilter.builder(store).paths("/orders/*", "/refunds").build();
        assertThat(filter.covers("POST", "/orders")).isTrue();
        assertThat(filter.covers("patch", "/orders/42/lines")).isTrue();
        assertThat(filter.covers("POST", "/refunds")).isTrue();
        assertThat(filter.covers("POST", "/refunds/1")).isFalse();
        assertThat(filter.covers("POST", "/ordersx")).isFalse();
        assertThat(filter.covers("GET", "/orders")).isFalse();
        assertThat(IdempotencyFilter.builder(store)
                        .methods("PUT")
                        .paths("/*")
                        .build()
                        .covers("PUT", "/anything"))
                .isTrue();
        assertThatThrownBy(() -> filter.covers(null, "/orders")).isInstanceOf(NullPointerException.class);
    }

    @Test
    void storedResponseValidatesAndCopies() {
        assertThatThrownBy(() -> StoredResponse.of(99, null, new byte[0])).hasMessageContaining("99");
        byte[] body = "x".getBytes(StandardCharsets.UTF_8);
        StoredResponse r = StoredResponse.of(201, "text/plain", body);
        body[0] = 'y';
        assertThat(r.body()).containsExactly('x');
        assertThat(r.header("content-type")).isEqualTo("text/plain");
        assertThat(r).isEqualTo(StoredResponse.of(201, "text/plain", "x".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void fingerprintCoversMethodPathContentTypeAndBody() {
        RequestFingerprint f = RequestFingerprint.sha256();
        byte[] body = "{\"a\":1}".getBytes(StandardCharsets.UTF_8);
        String base = f.fingerprint("POST", "/orders", "application/json; charset=UTF-8", body);
        assertThat(f.fingerprint("POST", "/orders", "application/json;charset=utf-8", body))
                .isEqualTo(base);
        assertThat(f.fingerprint("PATCH", "/orders", "application/json; charset=UTF-8", body))
                .isNotEqualTo(base);
        assertThat(f.fingerprint("POST", "/orders/1", "application/json; charset=UTF-8", body))
                .isNotEqualTo(base);
        assertThat(f.fingerprint("POST", "/orders", "text/plain", body)).isNotEqualTo(base);
        assertThat(f.fingerprint(
                        "POST",
                        "/orders",
                        "application/json; charset=UTF-8",
                        "{\"a\":2}".getBytes(StandardCharsets.UTF_8)))
                .isNotEqualTo(base);
        // length prefixes: moving a byte from one field to the next changes the hash
        assertThat(f.fingerprint("POST", "/ab", null, "c".getBytes(StandardCharsets.UTF_8)))
                .isNotEqualTo(f.fingerprint("POST", "/a", null, "bc".getBytes(StandardCharsets.UTF_8)));
        assertThat(base).startsWith("sha256:").hasSize(7 + 64);
        // the query string counts; no query is the 4-argument fingerprint, and differs from an empty one
        assertThat(f.fingerprint("POST", "/orders", null, "application/json; charset=UTF-8", body))
                .isEqualTo(base);
        assertThat(f.fingerprint("POST", "/orders", "dry_run=true", "application/json; charset=UTF-8", body))
                .isNotEqualTo(base);
        assertThat(f.fingerprint("POST", "/orders", "", "application/json; charset=UTF-8", body))
                .isNotEqualTo(base);
        assertThat(f.fingerprint("POST", "/orders", "a=1&b=2", null, body))
                .isNotEqualTo(f.fingerprint("POST", "/orders", "b=2&a=1", null, body));
        // a fingerprint written against the 4-argument method sees the query string in the path
        RequestFingerprint own = (method, path, type, b) -> path;
        assertThat(own.fingerprint("POST", "/orders", "x=1", null, body)).isEqualTo("/orders?x=1");
    }

    @Test
    void theStandardResponsePolicyCommitsSuccessStoresFinalRefusalsAndReleasesTheRest() {
        ResponsePolicy p = ResponsePolicy.standard();
        for (int s : new int[] {200, 201, 202, 204, 301, 302, 303}) {
            assertThat(p.action(s)).as("%d", s).isEqualTo(ResponsePolicy.Action.COMMIT);
        }
        for (int s : new int[] {300, 304, 307, 308, 400, 404, 410, 412, 413, 415, 422}) {
            assertThat(p.action(s)).as("%d", s).isEqualTo(ResponsePolicy.Action.ROLL_BACK_AND_STORE);
        }
        for (int s : new int[] {401, 403, 408, 409, 423, 425, 429, 500, 502, 503, 504}) {
            assertThat(p.action(s)).as("%d", s).isEqualTo(ResponsePolicy.Action.RELEASE);
        }
    }
}
