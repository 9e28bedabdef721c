package dev.outbox.spring.internal;

import java.util.Objects;
import org.jooq.Transaction;
import org.jooq.TransactionContext;
import org.jooq.TransactionProvider;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.TransactionDefinition;
import org.springframework.transaction.TransactionStatus;
import org.springframework.transaction.support.DefaultTransactionDefinition;

/**
 * Runs jOOQ's {@code dsl.transaction(...)} as a Spring-managed transaction (propagation REQUIRED),
 * so that code inside it, {@code @Transactional} methods included, joins it.
 */
public final class SpringTransactionProvider implements TransactionProvider {
    private final PlatformTransactionManager transactionManager;

    public SpringTransactionProvider(PlatformTransactionManager transactionManager) {
        this.transactionManager = Objects.requireNonNull(transactionManager, "transactionManager may not be null");
    }

    @Override
    public void begin(TransactionContext ctx) {
        TransactionStatus status = transactionManager.getTransaction(
                new DefaultTransactionDefinition(TransactionDefinition.PROPAGATION_REQUIRED));
        ctx.transaction(new SpringTransaction(status));
    }

    @Override
    public void commit(TransactionContext ctx) {
        transactionManager.commit(status(ctx));
    }

    @Override
    public void rollback(TransactionContext ctx) {
        transactionManager.rollback(status(ctx));
    }

    private static TransactionStatus status(TransactionContext ctx) {
        return ((SpringTransaction) ctx.transaction()).status;
    }

    private record SpringTransaction(TransactionStatus status) implements Transaction {}
}
