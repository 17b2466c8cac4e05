-- The registry on PostgreSQL (issue 27): the seed's five tables ("Database Schema
-- Design", seed 001) with the seed's column names, plus what memd needs: the whole
-- metadata document of each strategy (JSONB, as in metadata/{id}.json), the audit, the
-- server that recorded each row, and the indexes of memd's queries.

CREATE TABLE strategies (
    strategy_id UUID PRIMARY KEY,
    strategy_name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT,
    category TEXT,
    sub_category TEXT,
    complexity_level TEXT,
    language TEXT,
    file_path TEXT,
    class_name TEXT,
    namespace TEXT,
    origin TEXT,
    academic_source TEXT,
    learned_from_strategy_id UUID,
    created_by TEXT,
    status TEXT NOT NULL,
    is_mem_enhanced BOOLEAN NOT NULL DEFAULT FALSE,
    requires_short_selling BOOLEAN NOT NULL DEFAULT FALSE,
    requires_margin BOOLEAN NOT NULL DEFAULT FALSE,
    tags TEXT[] NOT NULL DEFAULT '{}',
    search_keywords TEXT,
    current_version TEXT NOT NULL,
    version_count INTEGER NOT NULL DEFAULT 1,
    lifetime_sharpe_ratio DOUBLE PRECISION,
    lifetime_win_rate DOUBLE PRECISION,
    total_trades BIGINT NOT NULL DEFAULT 0,
    total_pnl DOUBLE PRECISION NOT NULL DEFAULT 0,
    mem_learning_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    mem_learned_patterns_count INTEGER NOT NULL DEFAULT 0,
    last_mem_update TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    deprecated_at TIMESTAMPTZ,
    deprecation_reason TEXT,
    -- memd: the nested metadata document, whole (the columns above are its flat view).
    document JSONB NOT NULL,
    -- memd: bumped on every write, so a daemon can tell a change it has not seen.
    revision BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX strategies_tags ON strategies USING GIN (tags);
CREATE INDEX strategies_category ON strategies (category, sub_category);
CREATE INDEX strategies_status ON strategies (status);

CREATE TABLE strategy_versions (
    version_id UUID PRIMARY KEY,
    strategy_id UUID NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    version_number TEXT NOT NULL,
    version_type TEXT CHECK (version_type IN ('major', 'minor', 'patch')),
    code_snapshot TEXT,
    git_commit_hash TEXT,
    changelog TEXT NOT NULL,
    breaking_changes TEXT,
    migration_notes TEXT,
    parameters_json JSONB NOT NULL DEFAULT '{}',
    default_parameters_json JSONB NOT NULL DEFAULT '{}',
    backtest_results_json JSONB NOT NULL DEFAULT '{}',
    validation_status TEXT NOT NULL DEFAULT 'pending'
        CHECK (validation_status IN ('passed', 'failed', 'pending')),
    test_coverage DOUBLE PRECISION CHECK (test_coverage BETWEEN 0 AND 100),
    sharpe_ratio DOUBLE PRECISION,
    win_rate DOUBLE PRECISION,
    max_drawdown DOUBLE PRECISION,
    cagr DOUBLE PRECISION,
    mem_enhanced_version BOOLEAN NOT NULL DEFAULT FALSE,
    mem_improvement_pct DOUBLE PRECISION,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    approved_by TEXT,
    approved_at TIMESTAMPTZ,
    is_active BOOLEAN NOT NULL DEFAULT FALSE,
    deprecated_at TIMESTAMPTZ,
    -- memd: fields of a version file this schema has no column for.
    extra JSONB NOT NULL DEFAULT '{}',
    UNIQUE (strategy_id, version_number)
);

CREATE TABLE strategy_performance (
    performance_id BIGSERIAL PRIMARY KEY,
    strategy_id UUID NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    version_id TEXT,
    trade_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT,
    signal_action TEXT NOT NULL CHECK (signal_action IN ('BUY', 'SELL', 'HOLD')),
    signal_confidence DOUBLE PRECISION,
    entry_price DOUBLE PRECISION NOT NULL,
    exit_price DOUBLE PRECISION NOT NULL,
    entry_timestamp TIMESTAMPTZ NOT NULL,
    exit_timestamp TIMESTAMPTZ NOT NULL,
    duration_seconds BIGINT,
    pnl DOUBLE PRECISION NOT NULL,
    pnl_percentage DOUBLE PRECISION NOT NULL,
    is_win BOOLEAN NOT NULL,
    max_adverse_excursion DOUBLE PRECISION,
    max_favorable_excursion DOUBLE PRECISION,
    stop_loss DOUBLE PRECISION,
    take_profit DOUBLE PRECISION,
    was_mem_enhanced BOOLEAN NOT NULL DEFAULT FALSE,
    mem_confidence_boost DOUBLE PRECISION,
    learned_pattern_applied TEXT,
    mem_reasoning TEXT,
    market_regime TEXT,
    volatility DOUBLE PRECISION,
    volume_ratio DOUBLE PRECISION,
    broker TEXT,
    slippage DOUBLE PRECISION,
    commission DOUBLE PRECISION,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- memd: which daemon recorded it.
    recorded_by TEXT,
    -- A trade id is counted once per strategy, whichever server records it.
    UNIQUE (strategy_id, trade_id),
    CHECK (exit_timestamp >= entry_timestamp)
);
CREATE INDEX strategy_performance_exit ON strategy_performance (strategy_id, exit_timestamp);

CREATE TABLE strategy_parameters (
    parameter_id BIGSERIAL PRIMARY KEY,
    strategy_id UUID NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    version_id TEXT,
    parameter_name TEXT NOT NULL,
    parameter_value TEXT NOT NULL,
    parameter_type TEXT CHECK (parameter_type IN ('integer', 'decimal', 'boolean', 'string', 'json')),
    -- memd: both values as JSON (parameter_value is the new one, as text).
    old_value JSONB NOT NULL,
    new_value JSONB NOT NULL,
    applied_from TIMESTAMPTZ NOT NULL,
    applied_to TIMESTAMPTZ,
    change_reason TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    client_uid INTEGER,
    before_sharpe DOUBLE PRECISION,
    after_sharpe DOUBLE PRECISION,
    improvement_pct DOUBLE PRECISION,
    is_ab_test BOOLEAN NOT NULL DEFAULT FALSE,
    ab_test_group TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX strategy_parameters_strategy ON strategy_parameters (strategy_id, parameter_name, created_at);

CREATE TABLE strategy_relationships (
    relationship_id BIGSERIAL PRIMARY KEY,
    parent_strategy_id UUID NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    child_strategy_id UUID NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    relationship_type TEXT NOT NULL CHECK (relationship_type IN (
        'derived_from', 'mem_enhanced_version', 'combined_with', 'alternative_to',
        'replaces', 'portfolio_component')),
    description TEXT,
    similarity_score DOUBLE PRECISION CHECK (similarity_score BETWEEN 0 AND 1),
    created_at TIMESTAMPTZ NOT NULL,
    CHECK (parent_strategy_id <> child_strategy_id),
    UNIQUE (parent_strategy_id, child_strategy_id, relationship_type)
);

-- memd: who changed what, from which server.
CREATE TABLE registry_audit (
    audit_id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    server TEXT NOT NULL,
    uid INTEGER,
    client TEXT,
    action TEXT NOT NULL,
    strategy_id UUID,
    details JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX registry_audit_at ON registry_audit (at);
