package dev.outbox.spring.internal;

import org.springframework.orm.jpa.EntityManagerHolder;
import org.springframework.transaction.support.TransactionSynchronizationManager;
import org.springframework.util.ClassUtils;

/**
 * Drops what JPA holds in memory for the current transaction: entities persisted, changed or
 * removed but not yet flushed. The Idempotency-Key store runs it before it rolls a refused
 * request's writes back: the starter's store rolls the whole transaction back, where clearing
 * first is harmless; rolled back to a savepoint, which JPA knows nothing of, they would otherwise
 * be flushed when the key and the stored refusal commit.
 */
public final class PersistenceContexts implements Runnable {
    private static final String HOLDER = "org.springframework.orm.jpa.EntityManagerHolder";

    private PersistenceContexts() {}

    /** @return the action for the store, or nothing to do when the application has no Spring JPA support */
    public static Runnable clearer(ClassLoader classLoader) {
        return ClassUtils.isPresent(HOLDER, classLoader) ? new PersistenceContexts() : () -> {};
    }

    @Override
    public void run() {
        for (Object resource :
                TransactionSynchronizationManager.getResourceMap().values()) {
            if (resource instanceof EntityManagerHolder holder) {
                holder.getEntityManager().clear();
            }
        }
    }
}
