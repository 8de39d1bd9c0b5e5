// @generated automatically by Diesel CLI.

diesel::table! {
    agent_processes (session_id) {
        session_id -> Text,
        pid -> Integer,
        started -> Nullable<BigInt>,
        host -> Text,
    }
}

diesel::table! {
    approvals (id) {
        id -> Text,
        session_id -> Text,
        run_id -> Nullable<Text>,
        request_id -> Text,
        tool -> Text,
        input -> Text,
        summary -> Text,
        detail -> Nullable<Text>,
        reason -> Nullable<Text>,
        suggestions -> Nullable<Text>,
        status -> Text,
        always -> Bool,
        message -> Nullable<Text>,
        created_at -> BigInt,
        decided_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    hook_reports (agent) {
        agent -> Text,
        last_at -> BigInt,
        last_event -> Text,
        last_cwd -> Nullable<Text>,
        outcome -> Text,
        received -> Integer,
    }
}

diesel::table! {
    instances (id) {
        id -> Text,
        host -> Text,
        pid -> Integer,
        started_at -> BigInt,
        heartbeat_at -> BigInt,
        stopped_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    messages (id) {
        id -> Integer,
        session_id -> Text,
        run_id -> Nullable<Text>,
        role -> Text,
        content -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    notify_targets (id) {
        id -> Integer,
        kind -> Text,
        url -> Text,
        on_failed -> Bool,
        on_needs_you -> Bool,
        on_finished -> Bool,
        from_flag -> Bool,
        created_at -> BigInt,
        last_at -> Nullable<BigInt>,
        last_ok -> Nullable<Bool>,
        last_result -> Nullable<Text>,
    }
}

diesel::table! {
    projects (id) {
        id -> Integer,
        name -> Text,
        path -> Text,
        created_at -> BigInt,
        approve_from_dashboard -> Bool,
        approval_wait_secs -> Integer,
    }
}

diesel::table! {
    runs (id) {
        id -> Text,
        session_id -> Text,
        started_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        outcome -> Nullable<Text>,
        exit_code -> Nullable<Integer>,
        duration_ms -> Nullable<BigInt>,
        pid -> Nullable<Integer>,
        agent_session_id -> Nullable<Text>,
        cost_usd -> Nullable<Double>,
        error_message -> Nullable<Text>,
        denied_tools -> Nullable<Text>,
        owner_instance -> Nullable<Text>,
        cancel_requested_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    session_transitions (seq) {
        seq -> Integer,
        session_id -> Text,
        project_id -> Integer,
        from_state -> Text,
        to_state -> Text,
        error_message -> Nullable<Text>,
        reason -> Text,
        at -> BigInt,
        attention -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        project_id -> Integer,
        name -> Text,
        agent -> Text,
        state -> Text,
        error_message -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        state_changed_at -> BigInt,
        external_id -> Nullable<Text>,
        message_count -> Integer,
        current_run_id -> Nullable<Text>,
        attention -> Nullable<Text>,
        last_hook_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        permission_mode -> Text,
    }
}

diesel::table! {
    transcript_files (path) {
        path -> Text,
        agent -> Text,
        size -> BigInt,
        mtime -> BigInt,
        read_offset -> BigInt,
        external_id -> Nullable<Text>,
        cwd -> Nullable<Text>,
        title -> Nullable<Text>,
        first_message -> Nullable<Text>,
        first_at -> Nullable<BigInt>,
        last_at -> Nullable<BigInt>,
        message_count -> Integer,
        skipped_lines -> Integer,
    }
}

diesel::table! {
    unseen_ends (session_id) {
        session_id -> Text,
        ended_at -> BigInt,
    }
}

diesel::joinable!(agent_processes -> sessions (session_id));
diesel::joinable!(approvals -> runs (run_id));
diesel::joinable!(approvals -> sessions (session_id));
diesel::joinable!(unseen_ends -> sessions (session_id));
diesel::joinable!(messages -> runs (run_id));
diesel::joinable!(messages -> sessions (session_id));
diesel::joinable!(runs -> sessions (session_id));
diesel::joinable!(session_transitions -> projects (project_id));
diesel::joinable!(sessions -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    agent_processes,
    approvals,
    hook_reports,
    instances,
    messages,
    notify_targets,
    projects,
    runs,
    session_transitions,
    sessions,
    transcript_files,
    unseen_ends,
);
