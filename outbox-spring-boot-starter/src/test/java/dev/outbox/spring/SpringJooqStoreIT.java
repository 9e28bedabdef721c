package dev.outbox.spring;

import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.http.server.IdempotencyOutcome;
import dev.outbox.http.server.IdempotencyRequest;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.StoredResponse;
import dev.outbox.spring.internal.SpringTransactionProvider;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.ExecuteContext;
import org.jooq.ExecuteListener;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.jooq.impl.DataSourceConnectionProvider;
import org.jooq.impl.DefaultConfiguration;
import org.jooq.impl.DefaultExecuteListenerProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * The Idempotency-Key store built by an application on a DSLContext such as Spring Boot's jOOQ
 * auto-configuration gives: connections of the Spring-managed transaction, and an ExecuteListener that
 * translates the driver's exceptions into Spring's, on real PostgreSQL.
 */
@ExtendWith(RealServices.class)
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class SpringJooqStoreIT {

    /**
     * G5: a duplicate of a request in flight waits and gets InFlight (409) when the lock timeout comes
     * as Spring's {@code CannotAcquireLockException}. Before, the store recognised it in jOOQ's own
     * exception only, and the duplicate failed with Spring's (500).
     */
    @Test
    void aDuplicateOfARequestInFlightGetsInFlightThroughSpringsExceptions(TestDatabase db) throws Exception {
        DataSource dataSource = db.newDataSource(4);
        IdempotencyStore store = IdempotencyStore.builder()
                .dsl(springJooq(dataSource, new DataSourceTransactionManager(dataSource)))
                .lockTimeout(Duration.ofMillis(300))
                .retryAfter(Duration.ofSeconds(2))
                .name("spring-jooq")
                .build();
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("user:a POST /notes", key, "fp");
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<IdempotencyOutcome> first = CompletableFuture.supplyAsync(() -> store.execute(request, tx -> {
            inside.countDown();
            try {
                assertThat(release.await(60, TimeUnit.SECONDS)).isTrue();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            return created(key);
        }));
        try {
            assertThat(inside.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(store.execute(request, tx -> created("must not run")))
                    .isEqualTo(new IdempotencyOutcome.InFlight(Duration.ofSeconds(2)));
        } finally {
            release.countDown();
        }
        assertThat(first.get(30, TimeUnit.SECONDS)).isEqualTo(new IdempotencyOutcome.Executed(created(key), true));
        assertThat(store.execute(request, tx -> created("must not run")))
                .isEqualTo(new IdempotencyOutcome.Replayed(created(key)));
    }

    /**
     * G5: a transaction manager of another DataSource leaves the key's connection in autocommit mode:
     * the store refuses the request before inserting the key, naming the cause, and stores nothing.
     * Before, the key committed on its own without a response, the request failed with 500, and every
     * retry got 409 until the key expired.
     */
    @Test
    void aTransactionManagerOfAnotherDataSourceIsRefusedBeforeTheKey(TestDatabase db) {
        DataSource dataSource = db.newDataSource(2);
        DataSource other = db.newDataSource(1);
        IdempotencyStore store = IdempotencyStore.builder()
                .dsl(springJooq(dataSource, new DataSourceTransactionManager(other)))
                .name("spring-jooq-other")
                .build();
        String key = UUID.randomUUID().toString();
        AtomicBoolean ran = new AtomicBoolean();
        assertThatThrownBy(() -> store.execute(new IdempotencyRequest("s", key, "f"), tx -> {
                    ran.set(true);
                    return created(key);
                }))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("the key's statements are not in a transaction")
                .hasMessageContaining("the transaction manager in use does not manage it");
        assertThat(ran).isFalse();
        assertThat(db.dsl().fetchCount(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY.IDEM_KEY.eq(key)))
                .isZero();
    }

    private static StoredResponse created(String body) {
        return StoredResponse.of(201, "text/plain", body.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A DSLContext as Spring Boot's jOOQ auto-configuration builds it: the connection of the
     * Spring-managed transaction, transactions begun by the transaction manager, and the driver's
     * exceptions translated into Spring's by the DataSource's SQL error codes.
     */
    private static DSLContext springJooq(DataSource dataSource, PlatformTransactionManager transactionManager) {
        ExecuteListener translator = new ExecuteListener() {
            @Override
            public void exception(ExecuteContext ctx) {
                SQLException e = ctx.sqlException();
                if (e != null) {
                    DataAccessException translated =
                            new SQLErrorCodeSQLExceptionTranslator("PostgreSQL").translate("jOOQ", ctx.sql(), e);
                    if (translated != null) {
                        ctx.exception(translated);
                    }
                }
            }
        };
        return DSL.using(new DefaultConfiguration()
                .set(SQLDialect.POSTGRES)
                .set(new DataSourceConnectionProvider(new TransactionAwareDataSourceProxy(dataSource)))
                .set(new SpringTransactionProvider(transactionManager))
                .set(new DefaultExecuteListenerProvider(translator)));
    }
}
