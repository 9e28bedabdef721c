package dev.outbox.spring.internal;

import javax.sql.DataSource;
import org.springframework.aop.framework.AopProxyUtils;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.ResourceTransactionManager;
import org.springframework.transaction.support.TransactionSynchronizationUtils;
import org.springframework.util.ClassUtils;

/**
 * Checks at start-up that the transaction manager the Idempotency-Key store begins its transactions
 * with manages the store's {@code DataSource}. One that does not leaves the key's connection in
 * autocommit mode: the store refuses every request then, and this says why at start-up instead.
 * Judged only where it can be told cheaply and for sure: a {@code DataSourceTransactionManager} (or
 * {@code JdbcTransactionManager}), a {@code JpaTransactionManager} that knows its {@code DataSource},
 * a {@code ResourceTransactionManager} of a {@code DataSource}, and Spring Kafka's transaction
 * managers, which manage no {@code DataSource}; any other (JTA, one of the application's own) passes.
 */
public final class TransactionManagers {
    private static final String JPA = "org.springframework.orm.jpa.JpaTransactionManager";
    private static final String KAFKA = "org.springframework.kafka.transaction.KafkaAwareTransactionManager";
    /** Proxies and wrappers deeper than this are not followed. */
    private static final int MAX_DEPTH = 16;

    private TransactionManagers() {}

    /**
     * @param manager the transaction manager the store's transactions are begun with
     * @param dataSource the DataSource the store writes to
     * @throws IllegalStateException when the manager manages another DataSource, or Kafka producers only
     */
    public static void requireManages(PlatformTransactionManager manager, DataSource dataSource) {
        Object target = unwrap(manager);
        ClassLoader loader = TransactionManagers.class.getClassLoader();
        String manages;
        if (ClassUtils.isPresent(KAFKA, loader)
                && ClassUtils.resolveClassName(KAFKA, loader).isInstance(target)) {
            manages = "Kafka producers, no DataSource";
        } else {
            DataSource managed = managedDataSource(target, loader);
            if (managed == null || sameDataSource(managed, dataSource)) {
                return;
            }
            manages = "another DataSource (" + managed + ")";
        }
        throw new IllegalStateException("outbox.idempotency.paths is set, but the transaction manager the"
                + " Idempotency-Key filter begins its transactions with ("
                + target.getClass().getName()
                + ", the single or @Primary PlatformTransactionManager) manages " + manages + ", not the DataSource"
                + " the key store writes to (" + dataSource + "). The key's statements would run outside any"
                + " transaction, each committed on its own, and the store refuses them. Make a transaction manager of"
                + " this DataSource (DataSourceTransactionManager, JdbcTransactionManager, JpaTransactionManager) the"
                + " single or @Primary PlatformTransactionManager, or define an IdempotencyStore bean of your own on a"
                + " DSLContext whose transactions are this DataSource's.");
    }

    /** @return the DataSource the manager begins its transactions on, or null when it cannot be told */
    private static DataSource managedDataSource(Object manager, ClassLoader loader) {
        if (manager instanceof DataSourceTransactionManager d) {
            return d.getDataSource();
        }
        if (ClassUtils.isPresent(JPA, loader) && Jpa.is(manager)) {
            return Jpa.dataSource(manager);
        }
        if (manager instanceof ResourceTransactionManager r && r.getResourceFactory() instanceof DataSource d) {
            return d;
        }
        return null;
    }

    /**
     * @return whether a connection the manager binds for {@code managed} is the one the store gets from
     *     {@code store}: Spring binds it under the manager's DataSource and looks it up under the store's,
     *     both unwrapped only as Spring unwraps them ({@code TransactionAwareDataSourceProxy} on the
     *     store's side, an {@code InfrastructureProxy} or a scoped proxy on both). A {@code
     *     DelegatingDataSource} or another proxy around the same pool on one side only is a different key,
     *     and the store would get a connection of its own, outside the transaction.
     */
    private static boolean sameDataSource(DataSource managed, DataSource store) {
        return key(managed) == key(store);
    }

    private static Object key(DataSource dataSource) {
        DataSource target =
                dataSource instanceof TransactionAwareDataSourceProxy p ? p.getTargetDataSource() : dataSource;
        return TransactionSynchronizationUtils.unwrapResourceIfNecessary(target);
    }

    /** @return the object behind Spring AOP proxies with a single target */
    private static Object unwrap(Object manager) {
        Object current = manager;
        for (int depth = 0; depth < MAX_DEPTH; depth++) {
            Object target = AopProxyUtils.getSingletonTarget(current);
            if (target == null) {
                return current;
            }
            current = target;
        }
        return current;
    }

    /** Touches JPA's classes only when they are on the class path. */
    private static final class Jpa {
        static boolean is(Object manager) {
            return manager instanceof JpaTransactionManager;
        }

        static DataSource dataSource(Object manager) {
            return ((JpaTransactionManager) manager).getDataSource();
        }
    }
}
