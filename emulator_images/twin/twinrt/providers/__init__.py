"""The twin's content providers: AOSP schemas in SQLite at AOSP paths.

Android apps and ``adb shell content`` reach contacts, SMS and the call log
through content providers that own SQLite files.  The twin has no provider
processes, so each ``content`` invocation opens the same files directly and
re-enacts what the provider would do (defaults, thread ids, mimetype ids,
aggregate contacts, error messages).  Behaviour follows these AOSP sources:

* ``packages/providers/TelephonyProvider``: ``MmsSmsDatabaseHelper`` (schema,
  triggers, ``updateThreads``), ``SmsProvider`` (URI table, insert defaults,
  query/update/delete), ``MmsSmsProvider.getThreadId`` (canonical addresses);
* ``packages/providers/ContactsProvider``: ``CallLogDatabaseHelper`` and
  ``CallLogProvider`` (strict column checks, ``DbModifierWithNotification``),
  ``ContactsDatabaseHelper`` (tables, ``view_data`` & co.) and
  ``ContactsProvider2``/``AccountResolver``/``DataRowHandler*``.

Why the storage is set up as it is:

* Firmware services running as another uid (``system``, 1000) open these
  files directly, read-only, and must see new rows at once.  So the
  databases use the rollback journal (``journal_mode=DELETE``, as Android's
  ``MmsSmsDatabaseHelper`` does) and every command commits before it
  returns.  WAL is avoided because a WAL reader needs write access to the
  ``-shm`` file (and the ``-wal`` file to exist); a rollback-journal reader
  needs only read access to the database file.
* Files are made mode 0644 and their directories 0771 (like
  ``/data/user/0/<pkg>``) so that any uid can traverse to them and read them.
  Writers are expected to run as root, as ``adb shell`` does on the twin.
* Many ``content`` processes may run at once: every write is one
  ``BEGIN IMMEDIATE`` transaction and connections wait on a busy timeout.

How the package is laid out (one module per concern):

* ``errors`` (``ProviderError``, ``Cursor``), ``java`` (Java semantics the
  output depends on), ``request`` (``Uri``, ``UriMatcher``, calling identity),
  ``phone`` (phone numbers and addresses);
* ``db`` (opening and writing the files) and ``schemas`` (the AOSP schemas,
  kept as ``.sql`` files next to it, and the rows a fresh provider writes);
* ``base`` (the provider base class) and one module per provider: ``sms``,
  ``calllog``, ``contacts``;
* ``routing`` (authority -> provider).

Every name is re-exported here, so ``from twinrt.providers import X`` and
``providers.X`` work as they did when this was one module.  Importing reads
the schema files; nothing else runs at import time.
"""

from __future__ import annotations

from .errors import (  # noqa: F401
    Cursor,
    IAE,
    ISE,
    ProviderError,
    UOE,
    Value,
    Values,
    _sqlite_error,
)
from .java import (  # noqa: F401
    JavaArrayMap,
    JavaHashMap,
    _JAVA_LONG,
    _java_fp_format,
    _shortest_digits,
    _sql_value,
    _wrap,
    build_query,
    concatenate_clauses,
    concatenate_where,
    get_as_integer,
    get_as_long,
    get_as_string,
    java_double_str,
    java_float_str,
    java_string_hash,
    now_ms,
    sql_escape_string,
    to_float32,
)
from .request import (  # noqa: F401
    Uri,
    _exception_message,
    _match,
    calling_package,
    parse_uri,
)
from .phone import (  # noqa: F401
    _EMAIL,
    _MIN_MATCH,
    _NAME_ADDR,
    _NANP,
    _PHONE,
    _dialable_digits,
    current_country_iso,
    extract_addr_spec,
    format_e164,
    is_email_address,
    is_phone_number,
    min_match_key,
    phone_numbers_equal,
)
from .db import (  # noqa: F401
    BUSY_TIMEOUT_MS,
    DB_DIR_MODE,
    DB_FILE_MODE,
    DbSpec,
    _collate,
    _ensure_dir,
    _register_functions,
    db_delete,
    db_insert,
    db_update,
    open_db,
    run_exec,
    run_query,
    write_txn,
)
from .schemas import (  # noqa: F401
    CALLLOG,
    CALLLOG_SCHEMA,
    COMMON_MIME_TYPES,
    CONTACTS,
    CONTACTS_SCHEMA,
    MIME_EMAIL,
    MIME_GROUP_MEMBERSHIP,
    MIME_NAME,
    MIME_NICKNAME,
    MIME_ORGANIZATION,
    MIME_PHONE,
    MMSSMS,
    MMSSMS_SCHEMA,
    _seed_contacts,
    init_databases,
)
from .base import (  # noqa: F401
    Provider,
)
from .sms import (  # noqa: F401
    DEFAULT_SUB_ID,
    INVALID_SUBSCRIPTION_ID,
    SMS_DRAFT,
    SMS_FAILED,
    SMS_INBOX,
    SMS_OUTBOX,
    SMS_QUEUED,
    SMS_SENT,
    SMS_TYPE_ALL,
    SmsProvider,
    _SMS_BOX,
    _SMS_URIS,
    _get_single_address_id,
    _lookup_person,
    _remove_unreferenced_canonical_addresses,
    delete_one_sms,
    get_or_create_thread_id,
    update_threads,
)
from .calllog import (  # noqa: F401
    CallLogProvider,
    _CALLS_COLUMNS,
    _CALL_LOG_URIS,
    _EXCLUDE_HIDDEN,
    _EXCLUDE_VOICEMAIL,
    _LEGACY_UNKNOWN_NUMBERS,
    _calls_projection_map,
    _insert_helper,
    _strict_projection,
    add_computed_call_values,
)
from .contacts import (  # noqa: F401
    ContactsProvider,
    DNS_EMAIL,
    DNS_NICKNAME,
    DNS_ORGANIZATION,
    DNS_PHONE,
    DNS_STRUCTURED_NAME,
    DNS_UNDEFINED,
    _CONTACTS_URIS,
    _DISTINCT_DATA_PROHIBITING_COLUMNS,
    _PRESENCE_NULL,
    _alternative_name,
    _cjk_style,
    _contacts_projection_maps,
    _fix_structured_name,
    _int_rows,
    _localized_sort_order,
    _lookup_key,
    _null_columns,
    _phonebook_label,
    _pm,
)
from .routing import (  # noqa: F401
    _PROVIDERS,
    authorities,
    provider_for,
)
