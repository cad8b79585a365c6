if obj.status ~= nil then
  if obj.status.phase == "Failed" then
    hs.status = "Degraded"
  end
  if obj.status.phase ~= nil then
    hs.message = "Revision " .. obj.status.phase .. " (" .. (obj.status.namespaceCount or 0) .. " namespaces, " .. (obj.status.podCount or 0) .. " pods). " .. hs.message
  end
end
return hs
