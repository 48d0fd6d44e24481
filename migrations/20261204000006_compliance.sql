-- Compliance: violations with first-seen and resolved times (history is kept: a resolved
-- violation stays, and a new one opens if the cause comes back), and one summary row per
-- evaluation for the score.
CREATE TABLE compliance_violations (
    id              uuid PRIMARY KEY,
    rule_id         text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    target_type     text NOT NULL CHECK (target_type IN ('vault', 'asset')),
    target_id       uuid NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
-- At most one open violation per rule and target.
CREATE UNIQUE INDEX compliance_violations_open_key
    ON compliance_violations (rule_id, target_id) WHERE resolved_at IS NULL;

CREATE TABLE compliance_evaluations (
    id              uuid PRIMARY KEY,
    evaluated_at    timestamptz NOT NULL DEFAULT now(),
    total           integer NOT NULL,
    passed          integer NOT NULL,
    failed          integer NOT NULL,
    by_severity     jsonb NOT NULL,
    -- Per rule: {"rule_id": {"checked": n, "failed": n}}, for framework pass/fail counts.
    by_rule         jsonb NOT NULL
);
