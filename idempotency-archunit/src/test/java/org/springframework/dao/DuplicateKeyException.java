package org.springframework.dao;

/**
 * Stand-in for Spring's {@code DuplicateKeyException} (spring-tx), which is not a dependency of this
 * module: a subtype of {@link DataIntegrityViolationException}, as in Spring, which the fixtures
 * catch by name.
 */
public class DuplicateKeyException extends DataIntegrityViolationException {
    public DuplicateKeyException(String msg) {
        super(msg);
    }
}
