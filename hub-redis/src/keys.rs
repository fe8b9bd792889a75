//! The Redis channels and keys of one hub, all under `{prefix}:{hub path}:`.

/// What a pub/sub channel of a hub is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Channel<'a> {
    /// Broadcasts and cluster-wide requests: every node subscribes.
    All,
    /// A node's inbox: directed traffic (sends to its connections, group changes, client
    /// results, answers).
    Node(&'a str),
    /// A group's messages: a node subscribes while it has a member.
    Group(&'a str),
    /// A user's messages: a node subscribes while it has one of the user's connections.
    User(&'a str),
}

/// The names of one hub's channels and keys.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{prefix}:{hub}:`
    base: String,
}

impl Keys {
    /// The keys of the hub mapped at `hub` under the application prefix `prefix`.
    pub(crate) fn new(prefix: &str, hub: &str) -> Self {
        Keys {
            base: format!("{prefix}:{hub}:"),
        }
    }

    /// A channel's name.
    pub(crate) fn channel(&self, channel: &Channel<'_>) -> String {
        match channel {
            Channel::All => format!("{}all", self.base),
            Channel::Node(node) => format!("{}node:{node}", self.base),
            Channel::Group(group) => format!("{}group:{group}", self.base),
            Channel::User(user) => format!("{}user:{user}", self.base),
        }
    }

    /// The prefix of node inboxes (a script appends the node id).
    pub(crate) fn node_prefix(&self) -> String {
        format!("{}node:", self.base)
    }

    /// Which channel of this hub `name` is; `None` for another hub's.
    pub(crate) fn parse<'a>(&self, name: &'a str) -> Option<Channel<'a>> {
        let rest = name.strip_prefix(self.base.as_str())?;
        if rest == "all" {
            return Some(Channel::All);
        }
        let (kind, value) = rest.split_once(':')?;
        match kind {
            "node" => Some(Channel::Node(value)),
            "group" => Some(Channel::Group(value)),
            "user" => Some(Channel::User(value)),
            _ => None,
        }
    }

    /// The sorted set of live nodes (score: when each stops being live, in Redis time, ms).
    pub(crate) fn nodes(&self) -> String {
        format!("{}nodes", self.base)
    }

    /// The hash from connection id to the node that owns it.
    pub(crate) fn connections(&self) -> String {
        format!("{}connections", self.base)
    }

    /// The prefix of the per-node sets of connection ids (a script appends the node id).
    pub(crate) fn node_connections_prefix(&self) -> String {
        format!("{}node-connections:", self.base)
    }

    /// The hash from connection id to the node that claimed it (no sticky sessions): the node its
    /// transport attached to, from the first request until its token is forgotten there. Apart
    /// from [`connections`](Self::connections), which holds connections past their handshake.
    pub(crate) fn claims(&self) -> String {
        format!("{}claims", self.base)
    }

    /// The prefix of the per-node sets of claimed connection ids (a script appends the node id).
    pub(crate) fn node_claims_prefix(&self) -> String {
        format!("{}node-claims:", self.base)
    }

    /// The set of the connection ids a node claimed.
    pub(crate) fn node_claims(&self, node: &str) -> String {
        format!("{}{node}", self.node_claims_prefix())
    }

    /// The marker of a connection that ended while its token could still attach a transport:
    /// no server may claim it again while it lasts.
    pub(crate) fn ended(&self, connection: &str) -> String {
        format!("{}ended:{connection}", self.base)
    }

    /// The set of the connection ids a node owns.
    pub(crate) fn node_connections(&self, node: &str) -> String {
        format!("{}{node}", self.node_connections_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_back_including_names_with_colons() {
        let keys = Keys::new("hubs", "/chat");
        for channel in [
            Channel::All,
            Channel::Node("n1"),
            Channel::Group("room:1"),
            Channel::User("alice@x"),
        ] {
            assert_eq!(keys.parse(&keys.channel(&channel)), Some(channel.clone()));
        }
        assert_eq!(keys.channel(&Channel::All), "hubs:/chat:all");
        assert_eq!(keys.parse("hubs:/other:all"), None);
        assert_eq!(keys.parse("hubs:/chat:weird:x"), None);
    }
}
