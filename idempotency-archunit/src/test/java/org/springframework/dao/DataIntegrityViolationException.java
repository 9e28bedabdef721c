package org.springframework.dao;

/**
 * Stand-in for Spring's {@code DataIntegrityViolationException} (spring-tx), which is not a
 * dependency of this module: the fixtures catch it by name, nothing more.
 */
public class DataIntegrityViolationException extends RuntimeException {
    public DataIntegrityViolationException(String msg) {
        super(msg);
    }
}
