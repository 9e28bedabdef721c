package dev.outbox.torture;

import java.util.List;

/** The kinds of fault a run injects. */
public enum Fault {
    SIGKILL("sigkill", "SIGKILL of a relay or consumer, then a new process"),
    SIGSTOP("sigstop", "SIGSTOP of a relay or consumer past its lease or session timeout, then SIGCONT"),
    PG_TERMINATE("pg-terminate", "pg_terminate_backend of the relays' or consumers' connections"),
    BROKER_RESTART("broker-restart", "Kafka broker stopped and started again"),
    PG_RESTART("pg-restart", "PostgreSQL stopped (pg_ctl stop -m fast) and started again"),
    DUPLICATE("duplicate", "records delivered a second time");

    private final String option;
    private final String description;

    Fault(String option, String description) {
        this.option = option;
        this.description = description;
    }

    /** @return the option that sets how many of this kind a run injects */
    public String option() {
        return option;
    }

    /** @return what it does */
    public String description() {
        return description;
    }

    /** @return the kinds drawn on the schedule (duplicates come from a rate instead) */
    static List<Fault> scheduled() {
        return List.of(SIGKILL, SIGSTOP, PG_TERMINATE, BROKER_RESTART, PG_RESTART);
    }
}
