-- Each session runs its agent in a permission mode, chosen when it is
-- created and changeable while idle. Claude: ask (approvals from the
-- dashboard), accept_edits, plan, bypass. Codex: its sandbox, read_only,
-- workspace_write, full_access. Sessions made before keep what they ran
-- with: Claude's default mode, and Codex's default read-only sandbox.
ALTER TABLE sessions ADD COLUMN permission_mode TEXT NOT NULL DEFAULT 'ask'
    CHECK (permission_mode IN (
        'ask', 'accept_edits', 'plan', 'bypass',
        'read_only', 'workspace_write', 'full_access'
    ));
UPDATE sessions SET permission_mode = 'read_only' WHERE agent = 'codex';

-- Tools the agent was refused during a run (its `permission_denials`),
-- as a comma-separated list of tool names.
ALTER TABLE runs ADD COLUMN denied_tools TEXT NULL;

-- A terminal Claude session's PermissionRequest hook may wait for a
-- decision made in the dashboard, per project, up to a bound.
ALTER TABLE projects ADD COLUMN approve_from_dashboard INTEGER NOT NULL DEFAULT 0
    CHECK (approve_from_dashboard IN (0, 1));
ALTER TABLE projects ADD COLUMN approval_wait_secs INTEGER NOT NULL DEFAULT 600
    CHECK (approval_wait_secs BETWEEN 10 AND 3600);

-- A tool use the agent asks the person to approve. `run_id` is the
-- agentdeck run that asked (NULL: a terminal session's hook asked);
-- `request_id` is the agent's own id for the question. The first answer
-- wins: a decision is a conditional update of a pending row.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    run_id TEXT NULL REFERENCES runs (id) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    -- The tool's input as the agent sent it (JSON).
    input TEXT NOT NULL,
    -- What a person reads: the command, the file path, the diff.
    summary TEXT NOT NULL,
    detail TEXT NULL,
    reason TEXT NULL,
    -- The agent's permission suggestions (JSON), for "allow always".
    suggestions TEXT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'allowed', 'denied', 'closed')),
    always INTEGER NOT NULL DEFAULT 0 CHECK (always IN (0, 1)),
    -- The deny message the person typed, or why the request was closed.
    message TEXT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT NULL
);
CREATE INDEX approvals_session_idx ON approvals (session_id, created_at);
CREATE INDEX approvals_pending_idx ON approvals (status) WHERE status = 'pending';

-- "Done, not seen": a run (or a terminal turn) that ended since the
-- session was last opened. The row goes when the session is opened.
CREATE TABLE unseen_ends (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ended_at BIGINT NOT NULL
);

-- Where notifications go when no tab is open: a generic JSON webhook,
-- ntfy, Slack or Discord, each event kind on or off, with the result of
-- the last delivery.
CREATE TABLE notify_targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy', 'slack', 'discord')),
    url TEXT NOT NULL,
    on_failed INTEGER NOT NULL DEFAULT 1 CHECK (on_failed IN (0, 1)),
    on_needs_you INTEGER NOT NULL DEFAULT 1 CHECK (on_needs_you IN (0, 1)),
    on_finished INTEGER NOT NULL DEFAULT 1 CHECK (on_finished IN (0, 1)),
    -- Configured by `serve --notify` rather than in the dashboard.
    from_flag INTEGER NOT NULL DEFAULT 0 CHECK (from_flag IN (0, 1)),
    created_at BIGINT NOT NULL,
    last_at BIGINT NULL,
    last_ok INTEGER NULL CHECK (last_ok IN (0, 1)),
    last_result TEXT NULL,
    UNIQUE (kind, url)
);
